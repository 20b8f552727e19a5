// `node --import <this file> script.ts` runs TypeScript sources of the
// workspace without a build (see typescript-hooks.mjs).
import { register } from 'node:module';

register('./typescript-hooks.mjs', import.meta.url);
