import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientAddress, parsePrefix, prefixWithin } from '../../../shared/domain/network';

test('addresses and prefixes are parsed into canonical CIDR', () => {
  assert.deepEqual(parsePrefix('203.0.113.7'), { cidr: '203.0.113.7/32', family: 'ipv4', any: false });
  assert.equal(parsePrefix('203.0.113.0/24').cidr, '203.0.113.0/24');
  assert.equal(parsePrefix('2001:DB8::1').cidr, '2001:db8::1/128');
  assert.equal(parsePrefix('2001:db8::/32').family, 'ipv6');
  assert.equal(parsePrefix('::ffff:198.51.100.1').cidr, '198.51.100.1/32');
  assert.deepEqual(parsePrefix('*'), { cidr: '*', family: 'ipv4', any: true });
  assert.equal(parsePrefix('0.0.0.0/0').any, true);
  assert.equal(parsePrefix('::/0').any, true);
});

test('malformed prefixes and host bits are refused with a reason', () => {
  assert.throws(() => parsePrefix('300.1.1.1'), /IPv4 or IPv6/);
  assert.throws(() => parsePrefix('10.0.0.0/33'), /IPv4 or IPv6/);
  assert.throws(() => parsePrefix('bogus'), /IPv4 or IPv6/);
  // Legacy IPv4 spellings ipaddr.js would read as other addresses (octal 010 is 8).
  assert.throws(() => parsePrefix('010.0.0.1'), /four decimal numbers/);
  assert.throws(() => parsePrefix('0x0a.0.0.0/8'), /four decimal numbers/);
  assert.throws(() => parsePrefix('10.1/32'), /four decimal numbers/);
  assert.throws(() => parsePrefix('10.0.0.1/24'), /host bits set; did you mean 10\.0\.0\.0\/24/);
});

test('containment follows prefix lengths and families', () => {
  const p = parsePrefix;
  assert.equal(prefixWithin(p('203.0.113.7/32'), p('203.0.113.0/24')), true);
  assert.equal(prefixWithin(p('203.0.113.0/24'), p('203.0.113.0/24')), true);
  assert.equal(prefixWithin(p('203.0.112.0/23'), p('203.0.113.0/24')), false);
  assert.equal(prefixWithin(p('198.51.100.1'), p('203.0.113.0/24')), false);
  assert.equal(prefixWithin(p('2001:db8::1'), p('203.0.113.0/24')), false);
  assert.equal(prefixWithin(p('2001:db8::1'), p('2001:db8::/32')), true);
  assert.equal(prefixWithin(p('*'), p('203.0.113.0/24')), false);
  assert.equal(prefixWithin(p('203.0.113.7'), p('*')), true);
});

test('client addresses are read from sockets and forwarding headers', () => {
  assert.equal(parseClientAddress('203.0.113.7:51234'), '203.0.113.7');
  assert.equal(parseClientAddress(' 203.0.113.7 '), '203.0.113.7');
  assert.equal(parseClientAddress('[2001:db8::1]:443'), '2001:db8::1');
  assert.equal(parseClientAddress('2001:db8::1'), '2001:db8::1');
  assert.equal(parseClientAddress('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(parseClientAddress('not-an-ip'), undefined);
  assert.equal(parseClientAddress(''), undefined);
});
