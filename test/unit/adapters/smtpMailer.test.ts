import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpMailer } from '../../../shared/adapters/smtpMailer';
import { MailCatcher } from '../../../dev/mail/catcher';

const mail = { to: ['bob@example.com'], subject: 'Approve access?', text: 'plain text', html: '<p>html</p>' };

test('SMTP: plain text and HTML arrive; starttls mode refuses a server that cannot upgrade', async () => {
  const catcher = new MailCatcher();
  await catcher.start();
  const base = { mode: 'smtp' as const, from: 'jit@example.com', host: '127.0.0.1', port: catcher.smtpPort };
  const clear = new SmtpMailer({ ...base, tls: 'none' });
  const strict = new SmtpMailer({ ...base, tls: 'starttls' });
  try {
    await clear.send(mail);
    const caught = await catcher.waitFor('the mail', (m) => m.subject === 'Approve access?');
    assert.deepEqual(caught.to, ['bob@example.com']);
    assert.equal(caught.from, 'jit@example.com');
    assert.equal(caught.text.trim(), 'plain text');
    assert.equal(caught.html?.trim(), '<p>html</p>');
    // The catcher offers no STARTTLS: links are credentials, so the mail must not go out in clear text.
    await assert.rejects(strict.send({ ...mail, subject: 'never sent' }));
    assert.equal(catcher.list().filter((m) => m.subject === 'never sent').length, 0);
  } finally {
    clear.close();
    strict.close();
    await catcher.stop();
  }
});
