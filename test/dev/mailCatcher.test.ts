import { test } from 'node:test';
import assert from 'node:assert/strict';
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
