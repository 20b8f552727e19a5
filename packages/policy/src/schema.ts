import { FIELD_NAMES, fieldSpec } from './fields.js';
import { profileSections } from './profile.js';

const DRAFT = 'https://json-schema.org/draft/2020-12/schema';

/**
 * The JSON Schema of a policy, from the table: `profile` describes a TOML
 * profile (sections and keys; editors that read JSON Schemas for TOML
 * complete profiles with it), `policy` the JSON form `Sandbox.fromPolicy`
 * takes.
 */
export function policySchema(form: 'profile' | 'policy' = 'profile'): Record<string, unknown> {
  if (form === 'policy') {
    return {
      $schema: DRAFT,
      title: 'Sandlock policy',
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(
        FIELD_NAMES.map((name) => {
          const spec = fieldSpec(name);
          const nullable = spec.default === null;
          const schema = nullable
            ? { anyOf: [spec.kind.schema, { type: 'null' }] }
            : spec.kind.schema;
          return [name, { description: spec.doc, ...schema, default: spec.default }];
        }),
      ),
    };
  }
  const properties: Record<string, unknown> = {};
  for (const [section, keys] of profileSections()) {
    properties[section] = {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(
        [...keys].map(([key, name]) => {
          const spec = fieldSpec(name);
          const fallback = spec.default === null ? {} : { default: spec.default };
          return [key, { description: spec.doc, ...spec.kind.schema, ...fallback }];
        }),
      ),
    };
  }
  return {
    $schema: DRAFT,
    title: 'Sandlock profile',
    type: 'object',
    additionalProperties: false,
    properties,
  };
}
