import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePolicy } from '@sandlock/policy';
import { afterAll, describe, expect, it } from 'vitest';
import { authHeader, CredentialError, httpSetup, readCredentials } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sandlock-credentials-'));
const file = join(dir, 'token');
writeFileSync(file, 'file-secret\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('credentials', () => {
  it('are read from the environment and from files, and say what the sandbox must not get', () => {
    const policy = parsePolicy({ credentials: { GH: 'env:GH_TOKEN', KEY: `file:${file}` } });
    const read = readCredentials(policy, () => false, { GH_TOKEN: 'env-secret' });
    expect([...read.secrets]).toEqual([
      ['GH', 'env-secret'],
      ['KEY', 'file-secret'],
    ]);
    expect(read.variables).toEqual(['GH_TOKEN']);
    expect(read.files).toEqual([file]);
  });

  it('refuse a secret the sandbox could read, or one that is missing', () => {
    const fromFile = parsePolicy({ credentials: { KEY: `file:${file}` } });
    expect(() => readCredentials(fromFile, (path) => path === file)).toThrow(
      new CredentialError(
        `--credential KEY: the sandbox could read ${file} itself (its fsRead/fsWrite hold it)`,
      ),
    );
    expect(() =>
      readCredentials(parsePolicy({ credentials: { GH: 'env:NOPE' } }), () => false, {}),
    ).toThrow(new CredentialError('--credential GH: NOPE is not set'));
    expect(() =>
      readCredentials(parsePolicy({ credentials: { K: 'file:/nonexistent/k' } }), () => false),
    ).toThrow(new CredentialError('--credential K: cannot read /nonexistent/k (ENOENT)'));
  });

  it('make the header of their scheme', () => {
    expect(authHeader({ kind: 'bearer' }, 't')).toEqual(['authorization', 'Bearer t']);
    expect(authHeader({ kind: 'basic' }, 'user:pass')).toEqual([
      'authorization',
      'Basic dXNlcjpwYXNz',
    ]);
    expect(authHeader({ kind: 'header', name: 'X-Api-Key' }, 'k')).toEqual(['x-api-key', 'k']);
  });

  it('httpSetup makes the proxy, DNS, credentials and bundle of a policy in one call', async () => {
    const policy = parsePolicy({
      httpAllow: ['GET api.example.test/**'],
      credentials: { GH: 'env:GH_TOKEN' },
      httpAuth: ['GET api.example.test bearer GH'],
    });
    const setup = await httpSetup(policy, null, { readable: () => false, env: { GH_TOKEN: 'x' } });
    try {
      expect(setup.credentials.variables).toEqual(['GH_TOKEN']);
      expect(setup.rules.needsRequests('api.example.test', 443)).toBe(true);
      const ca = await setup.proxy.caCertificate();
      expect(setup.bundle.files.get(setup.bundle.primary)!.endsWith(`${ca.trim()}\n`)).toBe(true);
      expect(setup.names.mayResolve('api.example.test')).toBe(true);
      expect(setup.names.mayResolve('elsewhere.test')).toBe(false);
    } finally {
      await setup.proxy.close();
    }
  });
});
