/**
 * A self-signed TLS certificate for a sandbox server on this machine (localhost, 127.0.0.1 and ::1), as Azure's own
 * endpoints are HTTPS only. One per common name per process: generating a key pair takes tens of milliseconds and
 * test files start many servers. A failed generation is not cached.
 */
import { generate } from 'selfsigned';

export interface LoopbackCertificate {
  key: string;
  cert: string;
}

const made = new Map<string, Promise<LoopbackCertificate>>();

export function loopbackCertificate(commonName: string): Promise<LoopbackCertificate> {
  let certificate = made.get(commonName);
  if (!certificate) {
    certificate = generate([{ name: 'commonName', value: commonName }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notAfterDate: new Date(Date.now() + 30 * 24 * 3600 * 1000),
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
            { type: 7, ip: '::1' },
          ],
        },
      ],
    }).then(
      (pems) => ({ key: pems.private, cert: pems.cert }),
      (error: unknown) => {
        made.delete(commonName);
        throw error;
      },
    );
    made.set(commonName, certificate);
  }
  return certificate;
}
