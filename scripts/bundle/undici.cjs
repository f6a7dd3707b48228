'use strict';
// What the gateway imports from undici (Pool, Agent, request, errors), for the bundle only
// (scripts/build.ts resolves `undici` here): undici's index also loads fetch, WebSocket, cookies,
// caches, mocks and proxy agents, ~30 ms of every start-up that the gateway never uses. The
// TypeScript sources and the tests use the full package. `request` is undici's own wrapper,
// copied from its index.js (7.x) — test/cli/bundle.test.ts runs jobs through it. package.json pins
// undici exactly because these paths are undici's internals: an update is a deliberate edit there,
// then `npm run build` and that test.
const Dispatcher = require('undici/lib/dispatcher/dispatcher');
const Pool = require('undici/lib/dispatcher/pool');
const Agent = require('undici/lib/dispatcher/agent');
const errors = require('undici/lib/core/errors');
const util = require('undici/lib/core/util');
const api = require('undici/lib/api');
const { getGlobalDispatcher } = require('undici/lib/global');

const { InvalidArgumentError } = errors;
Object.assign(Dispatcher.prototype, api);

function makeDispatcher(fn) {
  return (url, opts, handler) => {
    if (typeof opts === 'function') {
      handler = opts;
      opts = null;
    }
    if (!url || (typeof url !== 'string' && typeof url !== 'object' && !(url instanceof URL))) {
      throw new InvalidArgumentError('invalid url');
    }
    if (opts != null && typeof opts !== 'object') {
      throw new InvalidArgumentError('invalid opts');
    }
    if (opts && opts.path != null) {
      if (typeof opts.path !== 'string') {
        throw new InvalidArgumentError('invalid opts.path');
      }
      let path = opts.path;
      if (!opts.path.startsWith('/')) {
        path = `/${path}`;
      }
      url = new URL(util.parseOrigin(url).origin + path);
    } else {
      if (!opts) {
        opts = typeof url === 'object' ? url : {};
      }
      url = util.parseURL(url);
    }
    const { agent, dispatcher = getGlobalDispatcher() } = opts;
    if (agent) {
      throw new InvalidArgumentError('unsupported opts.agent. Did you mean opts.client?');
    }
    return fn.call(
      dispatcher,
      {
        ...opts,
        origin: url.origin,
        path: url.search ? `${url.pathname}${url.search}` : url.pathname,
        method: opts.method || (opts.body ? 'PUT' : 'GET'),
      },
      handler,
    );
  };
}

module.exports = { Dispatcher, Pool, Agent, errors, request: makeDispatcher(api.request) };
