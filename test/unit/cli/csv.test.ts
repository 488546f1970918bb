import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { csvField, csvRecord } from '../../../cli/csv';
import { parseCsv } from '../../support/csv';

test('fields are quoted only when RFC 4180 needs it, with quotes doubled', () => {
  assert.equal(csvField('plain text'), 'plain text');
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('two\nlines'), '"two\nlines"');
  assert.equal(csvField('cr\rlf'), '"cr\rlf"');
  assert.equal(csvField(''), '');
  assert.equal(csvField(undefined), '');
  assert.equal(csvField(1000), '1000');
  assert.equal(csvField([22, 3389]), '"22,3389"');
  assert.equal(csvField(' =1+1'), ' =1+1', 'written as stored, nothing added');
});

test('any text survives a write and a strict RFC 4180 read', () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.string({ unit: 'grapheme' }), { minLength: 2, maxLength: 5 }), { minLength: 1 }),
      (rows) => {
        const text = rows.map((r) => `${csvRecord(r)}\r\n`).join('');
        assert.deepEqual(parseCsv(text), rows);
      },
    ),
  );
});
