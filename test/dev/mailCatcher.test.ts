import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { SmtpMailer } from '../../shared/adapters/smtpMailer';
import { MailCatcher } from '../../dev/mail/catcher';

test('the mail catcher lists caught mail with clickable links, escaped, and shows each mail without running it', async () => {
  const catcher = new MailCatcher({ webPort: 0 });
  await catcher.start();
  const mailer = new SmtpMailer({
    mode: 'smtp',
    from: 'jit@example.com',
    host: '127.0.0.1',
    port: catcher.smtpPort,
    tls: 'none',
  });
  try {
    await mailer.send({
      to: ['approver@example.com'],
      subject: 'Approve <script>x</script>?',
      text: 'Approve: http://127.0.0.1:7071/api/approvals?token=abc#approve',
      html: '<p>hi</p><script>alert(1)</script>',
    });
    await catcher.waitFor('the mail', () => true);
    const list = await fetch(catcher.webUrl!);
    const page = await list.text();
    assert.equal(list.status, 200);
    assert.ok(page.includes('Approve &lt;script&gt;x&lt;/script&gt;?'), 'the subject is escaped');
    assert.ok(
      page.includes('href="http://127.0.0.1:7071/api/approvals?token=abc#approve"'),
      'the link is clickable',
    );
    const one = await fetch(new URL('/mail/1', catcher.webUrl));
    assert.match(one.headers.get('content-security-policy') ?? '', /default-src 'none'.*sandbox/);
    assert.ok((await one.text()).includes('<p>hi</p>'));
  } finally {
    mailer.close();
    await catcher.stop();
  }
});

test('a sender that vanishes mid-conversation (a killed host) does not take the catcher down', async () => {
  const catcher = new MailCatcher();
  await catcher.start();
  const mailer = new SmtpMailer({
    mode: 'smtp',
    from: 'jit@example.com',
    host: '127.0.0.1',
    port: catcher.smtpPort,
    tls: 'none',
  });
  try {
    for (let i = 0; i < 3; i++) {
      const socket = connect(catcher.smtpPort, '127.0.0.1');
      // Wait for the greeting, start a conversation, then reset the connection as a SIGKILLed process's would.
      await once(socket, 'data');
      socket.write('EHLO host\r\nMAIL FROM:<jit@example.com>\r\n');
      await new Promise((r) => setTimeout(r, 20));
      socket.resetAndDestroy();
      await once(socket, 'close');
    }
    await new Promise((r) => setTimeout(r, 100));
    await mailer.send({
      to: ['someone@example.com'],
      subject: 'still here',
      text: 'yes',
      html: '<p>yes</p>',
    });
    const mail = await catcher.waitFor('the mail after the resets', (m) => m.subject === 'still here');
    assert.deepEqual(mail.to, ['someone@example.com']);
  } finally {
    mailer.close();
    await catcher.stop();
  }
});
