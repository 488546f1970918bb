/**
 * `npm run rules`: prints the rules of every NSG in the running sandbox's ARM emulator, JIT rules marked.
 * Reads the emulator's own view (GET /_emulator/nsgs), so it works while the sandbox runs in another terminal.
 */
import { get } from 'node:https';

interface Rule {
  name: string;
  properties: {
    priority: number;
    direction: string;
    access: string;
    protocol: string;
    sourceAddressPrefix?: string;
    sourceAddressPrefixes?: string[];
    destinationPortRange?: string;
    destinationPortRanges?: string[];
    description?: string;
  };
}
interface Nsg {
  id: string;
  name: string;
  properties?: { securityRules?: Rule[] };
  securityRules?: Rule[];
}

const port = process.env.JIT_SANDBOX_ARM_PORT ?? '8443';
// The emulator's certificate is self-signed and made at start: this tool only ever talks to loopback.
get(`https://127.0.0.1:${port}/_emulator/nsgs`, { rejectUnauthorized: false }, (res) => {
  let text = '';
  res.on('data', (c: Buffer) => (text += c.toString()));
  res.on('end', () => {
    const body = JSON.parse(text) as Nsg[] | { value: Nsg[] };
    const nsgs = Array.isArray(body) ? body : body.value;
    for (const nsg of nsgs) {
      console.log(`\n${nsg.name}  (${nsg.id})`);
      const rules = [...(nsg.properties?.securityRules ?? nsg.securityRules ?? [])].sort(
        (a, b) => a.properties.priority - b.properties.priority,
      );
      if (!rules.length) console.log('  (no rules)');
      for (const r of rules) {
        const p = r.properties;
        const src = p.sourceAddressPrefixes?.length
          ? p.sourceAddressPrefixes.join(',')
          : p.sourceAddressPrefix;
        const ports = p.destinationPortRanges?.length
          ? p.destinationPortRanges.join(',')
          : p.destinationPortRange;
        const mark = r.name.startsWith('jit-') ? '*' : ' ';
        console.log(
          `${mark} ${String(p.priority).padStart(4)} ${p.direction.padEnd(8)} ${p.access.padEnd(5)} ${p.protocol.padEnd(4)} ${String(src).padEnd(20)} -> ${String(ports).padEnd(10)} ${r.name}`,
        );
      }
    }
    console.log('\n* = a rule written by azure-jit-access');
  });
}).on('error', (err) => {
  console.error(
    `Could not reach the ARM emulator on port ${port}: is \`npm start\` running? (${err.message})`,
  );
  process.exit(1);
});
