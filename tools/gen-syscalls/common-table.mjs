import { readFileSync } from 'node:fs';

/**
 * Reads common-since-451.tsv: `number<TAB>name[<TAB>arch,arch]`, `#` comments, blank lines.
 * A row without an arch list applies to every architecture.
 */
export function readCommonTable(path, knownArches) {
  const rows = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.forEach((line, index) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const where = `${path}:${index + 1}`;
    const [numberText, name, archList, ...extra] = line.split('\t');
    if (!/^\d+$/.test(numberText ?? '') || !/^[a-z_][a-z0-9_]*$/.test(name ?? '') || extra.length) {
      throw new Error(`${where}: expected 'number<TAB>name[<TAB>arches]', got '${line}'`);
    }
    const arches = archList === undefined ? null : archList.split(',');
    for (const arch of arches ?? []) {
      if (!knownArches.includes(arch)) {
        throw new Error(`${where}: unknown arch '${arch}'`);
      }
    }
    rows.push({ number: Number(numberText), name, arches, where });
  });
  return rows;
}

/**
 * Adds the rows that apply to `arch` to a header-derived table. A syscall the header already
 * has keeps the header's number; the two disagreeing, or two names claiming one number, is an
 * error because one of the sources is wrong.
 */
export function mergeCommonRows(table, rows, arch) {
  const merged = new Map(table);
  const owners = new Map([...merged].map(([name, number]) => [number, name]));
  for (const row of rows) {
    if (row.arches !== null && !row.arches.includes(arch)) continue;
    const headerNumber = merged.get(row.name);
    if (headerNumber !== undefined) {
      if (headerNumber !== row.number) {
        throw new Error(
          `${row.where}: ${row.name} is ${row.number} but the ${arch} header says ${headerNumber}`,
        );
      }
      continue;
    }
    const owner = owners.get(row.number);
    if (owner !== undefined) {
      throw new Error(`${row.where}: ${row.number} is ${owner} in the ${arch} header`);
    }
    merged.set(row.name, row.number);
    owners.set(row.number, row.name);
  }
  return merged;
}
