'use strict';
// No panic aborts Node. A test-only build (`--features test-panics`, built into
// target/test-panics by `npm run build:test-panics`, never shipped) adds a `testPanic`
// strategy kind that panics where it is told to; every panic must surface as an Error and
// the process must go on serving.

const path = require('node:path');
const { AksStrategy } = require('..');

const binding = require(path.join(__dirname, '..', 'target', 'test-panics', 'backstage-kubernetes-auth-native.linux-x64-gnu.node'));

const realm = {
  makeError: (message, isTypeError) => (isTypeError ? new TypeError(message) : new Error(message)),
  makeCredential: (type, a, b) => ({ type, token: a, cert: a, key: b }),
  makeObject: (entries) => Object.fromEntries(entries),
};
const make = (at) => new binding.NativeStrategy('testPanic', { at }, realm);
// Errors napi-rs makes from a caught panic come from the main realm, not Jest's vm realm.
const isError = (e) => Object.prototype.toString.call(e) === '[object Error]';

async function settle(fn) {
  try {
    return { value: await fn() };
  } catch (error) {
    return { error };
  }
}

describe('panics surface as Errors', () => {
  it('in a constructor', () => {
    const { error } = (() => {
      try {
        make('constructor');
        return {};
      } catch (error) {
        return { error };
      }
    })();
    expect(isError(error)).toBe(true);
    expect(error.message).toMatch(/panic/);
  });

  it('in validateCluster and presentAuthMetadata', () => {
    expect(() => make('validate').validateCluster({})).toThrow(/panic/);
    expect(() => make('present').presentAuthMetadata({})).toThrow(/panic/);
  });

  it('in credential_now, before any future: an Error of this realm', async () => {
    const { error } = await settle(() => make('credentialNow').bind()({}, {}));
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe('internal error in getCredential');
  });

  it('in the first poll of getCredential, on the JS thread: a rejection of this realm', async () => {
    const s = make('firstPoll');
    const { error } = await settle(() => s.bind()({}, {}));
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe('internal error in getCredential');
  });

  it('after an await, on the Tokio runtime: a rejection', async () => {
    const { error } = await settle(() => make('afterAwait').bind()({}, {}));
    expect(isError(error)).toBe(true);
  });

  it('inside a cached single-flight fetch: every waiter rejects and the next call does not hang', async () => {
    const s = make('inCacheFetch');
    const first = await Promise.all(Array.from({ length: 50 }, () => settle(() => s.bind()({}, {}))));
    for (const r of first) {
      expect(r.error).toBeInstanceOf(Error);
      expect(r.error.message).toBe('testPanic: fetch: internal error while fetching');
    }
    const again = await settle(() => s.bind()({}, {}));
    expect(again.error.message).toBe('testPanic: fetch: internal error while fetching');
  });

  it('and the process goes on serving', async () => {
    await expect(new AksStrategy().getCredential({}, { aks: 'still-alive' })).resolves.toStrictEqual({
      type: 'bearer token',
      token: 'still-alive',
    });
  });
});
