// Writes docs/policy.md from the policy table (the built package): `pnpm gen:policy-docs`.
import { writeFileSync } from 'node:fs';
import { policyReference } from '../dist/index.js';

const target = new URL('../../../docs/policy.md', import.meta.url);
writeFileSync(target, policyReference());
process.stdout.write(`wrote ${target.pathname}\n`);
