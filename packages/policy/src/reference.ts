import { FIELD_NAMES, fieldSpec } from './fields.js';

function code(text: string): string {
  return `\`${text}\``;
}

function setterOf(name: string): string {
  const { setter } = fieldSpec(name as never);
  const parameters = {
    set: 'value',
    append: '...values',
    switch: 'enabled = true',
    custom: setter.parameters ?? '',
  }[setter.mode];
  return `.${setter.name ?? name}(${parameters})`;
}

function defaultOf(value: unknown): string {
  if (value === null) return 'unset';
  if (Array.isArray(value) && value.length === 0) return 'none';
  if (typeof value === 'object' && value !== null && Object.keys(value).length === 0) return 'none';
  return code(JSON.stringify(value));
}

/** The policy reference (docs/policy.md), from the table. */
export function policyReference(): string {
  const lines = [
    '# Policy reference',
    '',
    '<!-- Generated from packages/policy/src/fields.ts by `pnpm gen:policy-docs`; do not edit. -->',
    '',
    'Every field of a Sandlock policy, as the library (`Sandbox.builder()` setters,',
    '`Sandbox.fromPolicy(json)`), the command line (`sandlock run` flags) and TOML',
    'profiles (`sandlock run -p NAME`, `Sandbox.fromProfile(text)`) spell it. On the',
    'command line and under a profile, flags replace single values and add to lists.',
    '`sandlock policy --schema` prints the JSON Schema of profiles.',
    '',
    '| Field | Setter | Flag | Profile | Default |',
    '|---|---|---|---|---|',
  ];
  for (const name of FIELD_NAMES) {
    const spec = fieldSpec(name);
    const flags = spec.flags
      .map((flag) =>
        code(
          `${flag.short ? `-${flag.short}, ` : ''}--${flag.long}${flag.value ? ` ${flag.value}` : ''}`,
        ),
      )
      .join(', ');
    lines.push(
      `| [${code(name)}](#${name.toLowerCase()}) | ${code(setterOf(name))} | ${flags || '—'} | ${code(`[${spec.profile.section}] ${spec.profile.key}`)} | ${defaultOf(spec.default)} |`,
    );
  }
  for (const name of FIELD_NAMES) {
    const spec = fieldSpec(name);
    lines.push('', `## ${name}`, '', spec.doc, '');
    if (spec.details) lines.push(spec.details, '');
    lines.push(`Values: ${spec.kind.describe}.`);
    const usage = {
      list: 'each value is added to the list',
      merge: 'each value is added to the others, key by key',
      replace: 'the last value given wins',
    }[spec.combine === 'append' ? 'list' : spec.combine];
    lines.push(`Given several times: ${usage}.`);
    for (const flag of spec.flags) lines.push(`- ${code(`--${flag.long}`)}: ${flag.help}.`);
  }
  return `${lines.join('\n')}\n`;
}
