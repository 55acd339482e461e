/*! Connect Portal host-page SDK 0.1.0 | MIT */
// The readable source. The script tag loads static/portal.min.js, built from this file by
// `make sdk` (terser, pinned in bench/package.json); tests/test_bench_smoke.py checks the
// committed build is up to date.
//
// Only what must run in the host page lives here: the session request (it must come from the
// host's origin), the iframes and the modal <dialog>, the popup opened inside the user's click,
// the message bridge (exact origins and windows both ways) and the events. Every other method
// is a call answered by static/frame.js in a hidden portal iframe (/embed/rpc): postMessage
// {id, method, args, token} to the portal's origin, {id, value | error, emit} back.
(function () {
  'use strict';

  const MODES = { MODAL: 'modal', INLINE: 'inline' };
  const LAYOUTS = { WIDE: 'wide', NARROW: 'narrow' };
  const SOURCE = 'connect-portal';
  // document.currentScript is only set while this file first executes.
  const scriptSrc = document.currentScript && document.currentScript.src;
  // Per-instance state lives here so host scripts cannot reach the token through the instance.
  const privates = new WeakMap();
  const enc = encodeURIComponent;
  const create = (tag) => document.createElement(tag);

  // An Error with {type} and, for HTTP failures, {status, body}.
  const portalError = (type, message, extra) => Object.assign(new Error(message || type), { type }, extra);

  const invalid = (message) => portalError('invalid_argument', message);
  const cancelled = () => portalError('cancelled', 'Closed');

  // Plain objects and arrays travel as JSON.
  const plain = (value) => [Object.prototype, Array.prototype, null].includes(Object.getPrototypeOf(value));

  function need(value, name) {
    if (!value || typeof value !== 'string') throw invalid(name + ' is required');
  }

  // An account connected or disconnected anywhere (a frame, a popup, an RPC call): the
  // instance's other frames fetch their content again, so every view on the page agrees.
  function emit(s, name, payload, from) {
    if (/^app-/.test(name)) {
      for (const f of [...s._inline, s._modal && s._modal._frame]) if (f && f !== from) send(f, s, 'portal:refresh');
    }
    for (const fn of [...(s._listeners.get(name) || [])]) {
      try {
        fn(payload);
      } catch (err) {
        // Surface the listener's bug in the console without skipping the other listeners.
        reportError(err);
      }
    }
  }

  function report(s, err) {
    // The failed initial session was already reported once; methods just reject with it.
    if (err !== s._fatal) emit(s, 'error', { type: err.type, message: err.message });
    return err;
  }

  const withReturnTo = (url) => url + (url.includes('?') ? '&' : '?') + 'return_to=' + enc(location.href);

  // Starts (or restarts, after authenticate()) the session; 'ready' or 'error' follows.
  function start(s) {
    s._fatal = null;
    const ready = s._ready = s._baseError ? Promise.reject(s._baseError) : createSession(s);
    // Emitted asynchronously, so listeners attached right after the constructor still hear it.
    ready.then(() => {
      emit(s, 'ready', { isReady: true });
      // Redirect mode came back with portal_attempt=<id> in the query: the frame asks the server
      // for that attempt's outcome (never trusting the URL) and answers the query without it,
      // so a reload of the page does not ask again.
      const q = s._redirectResult;
      s._redirectResult = null;
      if (q) {
        call(s, 'redirected', [q]).then((rest) => {
          history.replaceState(history.state, '', location.pathname + rest + location.hash);
        }, (err) => report(s, err));
      }
    }, (err) => {
      report(s, err);
      s._fatal = err;
    });
    return ready;
  }

  async function createSession(s) {
    const res = await fetch(s._base + '/api/v1/sessions', {
      method: 'POST', body: JSON.stringify({ ...s._credentials, theme: s._theme }),
      headers: { 'Content-Type': 'application/json' },
    }).catch(async (err) => {
      // A page on an origin the portal refuses gets no CORS answer, only this network error:
      // the portal's public origin check names the cause.
      const check = await fetch(s._base + '/api/v1/origin-check?origin=' + enc(location.origin)).then((r) => r.json(), () => 0);
      throw check.allowed === false ? portalError('origin_not_allowed', check.message) : portalError('network_error', err.message);
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw portalError(data.error || 'http_error', data.message || 'HTTP ' + res.status, { status: res.status, body: data });
    s._token = data.token;
    s._expires = Date.parse(data.expires_at) || 0;
  }

  async function sessionToken(s, force) {
    if (!s._ready) throw portalError('not_authenticated');
    await s._ready;
    // Renew a minute early so a request never starts with a token about to lapse.
    if (force || s._expires - Date.now() < 60000) {
      s._renewing = s._renewing || createSession(s).finally(() => { s._renewing = null; });
      await s._renewing;
    }
    return s._token;
  }

  function send(frame, s, type, payload) {
    frame.contentWindow.postMessage({ source: SOURCE, version: 1, type, payload }, s._origin);
  }

  // The hidden frame answering calls: created by a call, resolved once loaded, and
  // removed again once no call or popup needs it (a second portal frame in the page, even a
  // hidden one, keeps the modal's iframe from taking the keyboard focus in Chromium).
  function idle(s) {
    setTimeout(() => {
      if (s._rpcFrame && !s._calls.size && !s._popups.size) {
        s._rpcFrame.remove();
        s._rpc = s._rpcFrame = null;
      }
    });
  }

  function rpcFrame(s) {
    return s._rpc = s._rpc || new Promise((resolve) => {
      const frame = s._rpcFrame = create('iframe');
      frame.hidden = true;
      frame.src = s._base + '/embed/rpc';
      frame.onload = () => resolve(frame);
      document.body.append(frame);
    });
  }

  // A method of frame.js's `methods`; a 401 from the portal (restarted with new keys, or a
  // lapsed session) is worth one fresh session and a retry.
  async function call(s, method, args, retry) {
    const token = await sessionToken(s, retry);
    try {
      return await new Promise((resolve, reject) => {
        const id = Math.random();
        s._calls.set(id, (r) => {
          for (const [name, payload] of r.emit) emit(s, name, payload);
          if (r.error) reject(portalError(r.error.type, r.error.message, r.error));
          else resolve(r.value);
        });
        rpcFrame(s).then((frame) => send(frame, s, 'portal:call', { id, method, args, token, project: s._project }));
      });
    } catch (err) {
      if (err.status !== 401 || err.type === 'http_error' || retry) throw err;
      return call(s, method, args, 1);
    }
  }

  const isModal = (s, frame) => s._modal && s._modal._frame === frame;

  // Into the modal's document itself: the iframe element may already be the host's
  // activeElement while Chromium has lost the focus (or another portal frame holds it), and
  // focus() on an already active element does nothing (nor does contentWindow.focus()).
  function focusModal(s) {
    const frame = s._modal && s._modal._frame;
    if (frame) {
      frame.blur();
      frame.focus();
    }
  }

  function settleFunction(s, frame, err, params) {
    const pending = s._functions.get(frame);
    if (pending && s._functions.delete(frame)) pending[err ? 1 : 0](err || params);
  }

  // The instance's one message listener (added by the constructor).
  function onMessage(s, event) {
    const data = event.data;
    const source = event.source;
    if (event.origin !== s._origin || !source || !data || data.source !== SOURCE || data.version !== 1) return;
    const type = data.type;
    const payload = data.payload || {};
    // Another portal frame (an inline view, an iframe embed) took the focus while the modal is
    // open: hand it back, so Tab, Enter and Esc never act on a view behind the modal.
    if (type === 'portal:focus') {
      if (s._modal && source !== s._modal._frame.contentWindow) focusModal(s);
      return;
    }
    if (s._popups.has(source)) {
      if (type === 'portal:connect-result') s._popups.get(source)(0, payload);
      return;
    }
    if (s._rpcFrame && source === s._rpcFrame.contentWindow) {
      const done = type === 'portal:return' && s._calls.get(payload.id);
      if (done) {
        s._calls.delete(payload.id);
        done(payload);
        idle(s);
      }
      return;
    }
    const frame = [...s._inline, s._modal && s._modal._frame].find((f) => f && f.contentWindow === source);
    // 'ready' from the frame is ignored: the SDK emits its own once the session exists.
    if (!frame) return;
    if (/^(app-(dis)?connected|error)$/.test(type)) {
      emit(s, type, payload, frame);
    } else if (type === 'portal:resize') {
      if (s._inline.has(frame) && payload.height > 0) {
        frame.style.height = Math.min(payload.height, 100000) + 'px';
      }
    } else if (type === 'portal:close-request') {
      if (isModal(s, frame)) closeModal(s);
    } else if (type === 'portal:function-params') {
      // showFunction waits for its own function's params; showFunctions for any function's.
      const pending = s._functions.get(frame);
      const name = pending && pending[2];
      if (pending && payload.params && (!name || name === payload.name)) {
        settleFunction(s, frame, null, name ? payload.params : { functionName: payload.name, params: payload.params });
        if (isModal(s, frame)) closeModal(s);
      }
    } else if (type === 'portal:navigate') {
      try {
        const url = new URL(payload.url);
        // Only ever navigate the host page to the portal itself.
        if (s._redirect && url.origin === s._origin) location.assign(withReturnTo(url.href));
      } catch (err) { /* not an absolute URL: ignore */ }
    }
  }

  // A native modal <dialog>: the browser provides the top layer, the backdrop, inertness of the
  // page behind, Esc, and focus going back where it was. Style properties rather than a style
  // attribute (or a <style> element) keep host pages with a strict CSP working.
  function openModal(s, frame, layout) {
    closeModal(s);
    const close = () => closeModal(s);
    // ARIA attributes through their reflecting properties (role, aria-modal, aria-label).
    const dialog = Object.assign(create('dialog'), {
      role: 'dialog', ariaModal: 'true', ariaLabel: frame.title,
      // A click on the dialog itself (not its iframe) is a click on the backdrop.
      onclick: (e) => { if (e.target === dialog) close(); },
      // Chromium fires 'close' at the next animation frame, not in close() itself: the event
      // of a dialog closed a moment ago may arrive once the next one is open, and must not
      // close that one.
      onclose: () => isModal(s, frame) && close(),
    });
    // Phones get a full-screen sheet (a min-width beats the user agent's max-width); elsewhere
    // the user agent's max-width and max-height keep the box inside small viewports.
    // The page behind is dimmed by the box's own outline, wider than any screen: ::backdrop has
    // no style property, and a stylesheet of ours would need the host's CSP to allow it.
    dialog.style.cssText = 'padding:0;border:0;display:grid;place-content:center;outline:1e4px solid #0008;' + (matchMedia('(max-width:480px)').matches
      ? 'margin:0;min-width:100%;min-height:100%'
      : 'border-radius:8px;height:720px;width:' + (layout === 'narrow' ? 420 : 960) + 'px');
    // Until its document paints over them (the portal's pages are opaque): a pulsing status and
    // a close button (autofocus: Esc works at once), never a blank box.
    frame.style.cssText += ';position:absolute;inset:0;height:100%';
    const status = Object.assign(create('p'), { role: 'status', textContent: 'Loading…' });
    status.animate({ opacity: [1, 0.2] }, { duration: 700, iterations: Infinity, direction: 'alternate' });
    const button = Object.assign(create('button'), { textContent: '✕', ariaLabel: 'Close', autofocus: true, onclick: close });
    button.style.cssText = 'position:absolute;top:8px;right:8px;font-size:20px;border:0;background:none';
    // Tab leaving the iframe lands on a sentinel, which hands focus straight back.
    const sentinel = () => Object.assign(create('span'), { tabIndex: 0, onfocus: () => frame.focus() });
    dialog.append(sentinel(), status, frame, sentinel(), button);
    const body = document.body;
    s._modal = { _dialog: dialog, _frame: frame, _overflow: body.style.overflow, _loading: [status, button] };
    body.style.overflow = 'hidden';
    body.append(dialog);
    dialog.showModal();
  }

  function closeModal(s) {
    const m = s._modal;
    if (!m) return;
    s._modal = null;
    m._dialog.close();
    m._dialog.remove();
    document.body.style.overflow = m._overflow;
    settleFunction(s, m._frame, cancelled());
    emit(s, 'modal-closed', {});
  }

  function removeInline(s, frame) {
    frame.remove();
    s._inline.delete(frame);
    settleFunction(s, frame, cancelled());
  }

  // query: more of the frame's query string; pending: [resolve, reject, name] of a function
  // form. Resolves once the iframe has loaded.
  async function show(s, path, mode, containerId, layout, query, title, pending) {
    mode = mode || 'modal';
    layout = layout || 'wide';
    if (!/^(modal|inline)$/.test(mode) || !/^(wide|narrow)$/.test(layout)) throw invalid('Unknown renderMode or layout');
    const container = mode === 'inline' && document.getElementById(containerId);
    if (mode === 'inline' && !container) throw invalid('No element with id ' + containerId);
    // A session already refused (or none started) rejects before anything opens.
    if (!s._ready || s._fatal) await sessionToken(s);
    const frame = create('iframe');
    // The document loads at once, in parallel with the session request; the token follows by
    // postMessage once both are there (#token=post): never in a URL, a log or a Referer.
    frame.src = s._base + '/embed/' + path + '?mode=' + mode + '&layout=' + layout + (query || '') + (s._lang ? '&lang=' + enc(s._lang) : '') + '#token=post';
    frame.style.cssText = 'display:block;width:100%;height:480px;border:0';
    frame.title = title || 'Connect apps';
    if (pending) s._functions.set(frame, pending);
    const loaded = new Promise((resolve) => { frame.onload = resolve; });
    if (container) {
      for (const f of s._inline) {
        if (!f.isConnected || f.parentNode === container) removeInline(s, f);
      }
      s._inline.add(frame);
      container.append(frame);
    } else {
      openModal(s, frame, layout);
    }
    try {
      send(frame, s, 'portal:token', (await Promise.all([sessionToken(s), loaded]))[0]);
    } catch (err) {
      if (isModal(s, frame)) closeModal(s);
      removeInline(s, frame);
      throw err;
    }
    if (isModal(s, frame)) {
      s._modal._loading.map((el) => el.remove());
      focusModal(s);
    }
  }

  // connectApp, and reconnectApp with the account id; o: {scopes} (extra optional scopes). An
  // async function runs synchronously up to its first await, and popup blockers honour
  // window.open only inside the user's click: no await before it.
  async function startConnect(s, appName, accountId, o) {
    need(appName, 'appName');
    const popup = open('about:blank', 'connect-portal-' + appName, 'width=520,height=700');
    const ticket = () => call(s, 'ticket', [appName, accountId, o]);
    if (popup) return connectInPopup(s, appName, popup, ticket);
    const err = report(s, portalError('popup_blocked', 'Popup blocked'));
    if (s._redirect) {
      ticket().then((t) => location.assign(withReturnTo(t.connect_url)), (e) => report(s, e));
    }
    throw err;
  }

  // The attempt's outcome, from the frame: the result the popup's last page posts (that page is
  // the portal's, the server's outcome rendered into it: checked here to come from the portal's
  // origin and from this very popup), else polled every other second (a popup that lost its
  // opener cannot post), and a last time once the popup is closed.
  async function connectInPopup(s, appName, popup, ticket) {
    try {
      const t = await ticket();
      try {
        popup.location.href = t.connect_url;
      } catch (err) { /* closed meanwhile: the closed-window check settles the attempt */ }
      return await new Promise((resolve, reject) => {
        const settle = (err, id) => {
          if (!s._popups.delete(popup)) return;
          clearInterval(timer);
          if (err) reject(err);
          else resolve(id);
        };
        const check = (result, closed) => call(s, 'attempt', [t.attempt_id, closed, appName, result]).then((id) => {
          if (id != null) settle(null, id);
        }, settle);
        s._popups.set(popup, (err, result) => (err ? settle(err) : check(result)));
        // The server every other second (a popup that lost its opener cannot post), and once
        // more as soon as the popup is closed.
        let ticks = 0;
        const timer = setInterval(() => {
          const closed = popup.closed;
          if (closed) clearInterval(timer);
          if (closed || ticks++ & 1) check(0, closed);
        }, 1000);
      });
    } catch (err) {
      popup.close();
      throw report(s, err);
    }
  }

  class ConnectPortal {
    constructor(options) {
      const o = options || {};
      const s = {
        _listeners: new Map(), _inline: new Set(), _popups: new Map(), _functions: new Map(), _calls: new Map(),
        _redirect: o.redirectOnPopupBlocked !== false, _lang: o.lang, _theme: o.theme, _redirectResult: /[?&]portal_attempt=/.test(location.search) && location.search,
      };
      privates.set(this, s);
      addEventListener('message', (event) => onMessage(s, event));
      const listeners = s._listeners;
      this.eventEmitter = {
        on(name, fn) {
          if (typeof fn === 'function') (listeners.get(name) || listeners.set(name, new Set()).get(name)).add(fn);
        },
        unsub(name, fn) {
          if (fn) listeners.get(name)?.delete(fn);
          else listeners.delete(name);
        },
      };
      try {
        // The script is at <base>/static/portal.min.js.
        const base = new URL(o.baseUrl || new URL('..', scriptSrc), location.href);
        base.search = base.hash = '';
        s._base = base.href.replace(/\/+$/, '');
        s._origin = base.origin;
      } catch (err) {
        s._baseError = invalid('baseUrl is required');
      }
      // With {appKey, userId, hash} the session starts now; without, authenticate() starts it.
      if (o.appKey || o.userId || o.hash || s._baseError) {
        s._project = o.appKey;
        s._credentials = { appKey: o.appKey, userId: o.userId, hash: o.hash };
        start(s);
      }
    }

    // Paragon's authenticate(): a JWT the host backend signed (sub = user id, aud = projectId).
    async authenticate(projectId, userToken) {
      const s = privates.get(this);
      need(projectId, 'projectId');
      need(userToken, 'userToken');
      Object.assign(s, { _project: projectId, _credentials: { projectId, userToken }, _expires: 0 });
      await start(s);
    }

    // Paragon's connect(): the app's page of the portal, in the modal.
    connect(integrationType) {
      return this.showApp(integrationType);
    }

    // Paragon's getUser(): {authenticated: true, userId, integrations} or {authenticated: false}.
    getUser() {
      const s = privates.get(this);
      // Not authenticated yet, or the session was refused (frame.js maps a refused call).
      return s._ready ? s._ready.then(() => call(s, 'getUser', []), () => ({ authenticated: false }))
        : Promise.resolve({ authenticated: false });
    }

    showApps(renderMode, containerId, layout) {
      return show(privates.get(this), 'apps', renderMode, containerId, layout);
    }

    async showApp(appName, renderMode, containerId, layout) {
      need(appName, 'appName');
      await show(privates.get(this), 'apps/' + enc(appName), renderMode, containerId, layout);
    }

    connectApp(appName, options) {
      return startConnect(privates.get(this), appName, null, options);
    }

    // Re-authorizes one account in the popup: it keeps its id (the promise resolves with it);
    // signing in as another account at the provider rejects with 'wrong_account'.
    // async runs synchronously up to its first await: the popup still opens inside the click.
    async reconnectApp(appName, connectedAccountId, options) {
      need(connectedAccountId, 'connectedAccountId');
      return startConnect(privates.get(this), appName, connectedAccountId, options);
    }

    // Resolves with the params the user submitted; rejects 'cancelled' when the form is closed.
    async showFunction(functionName, params, connectedAccountId, renderMode, containerId, layout) {
      const s = privates.get(this);
      need(functionName, 'functionName');
      if (params != null && !plain(params)) throw invalid('params must be a JSON object');
      let query = '&params_json=' + enc(JSON.stringify(params || {}));
      if (connectedAccountId) query += '&connectedAccountId=' + enc(connectedAccountId);
      return new Promise((resolve, reject) => {
        show(s, 'functions/' + enc(functionName), renderMode, containerId, layout,
          query, 'Function form', [resolve, reject, functionName]).catch(reject);
      });
    }

    // The user's accounts of one app, with Disconnect; the same events as showApp.
    async showConnectedAccounts(appName, renderMode, containerId, layout) {
      need(appName, 'appName');
      await show(privates.get(this), 'apps/' + enc(appName) + '/accounts', renderMode, containerId, layout);
    }

    // The functions (of one app, or all); resolves with {functionName, params} once the user
    // has filled one's form, rejects 'cancelled' when closed first.
    showFunctions(renderMode, containerId, layout, appName) {
      return new Promise((resolve, reject) => {
        show(privates.get(this), 'functions', renderMode, containerId, layout,
          appName ? '&app=' + enc(appName) : '', 'Functions', [resolve, reject]).catch(reject);
      });
    }

    // Paragon's request(): the app's API through the portal's credential-injecting proxy. A body
    // other than a plain object or array (a string, FormData, URLSearchParams, a buffer) travels
    // as a Blob carrying its Content-Type.
    async request(app, path, options) {
      const o = Object.assign({}, options);
      if (o.body != null && !plain(o.body)) o.body = await new Response(o.body).blob();
      o.headers = [...new Headers(o.headers)];
      return call(privates.get(this), 'request', [app, path, o]);
    }

    async close() {
      const s = privates.get(this);
      closeModal(s);
      s._inline.forEach((f) => removeInline(s, f));
      s._popups.forEach((done) => done(portalError('closed', 'Portal closed')));
    }
  }

  // The rest of the public surface is answered by the hidden frame.
  for (const name of ['event', 'disconnectApp', 'isAppConnected', 'getConnectedAccounts', 'getFunction', 'invokeFunction',
    'getFlows', 'setFlow']) {
    ConnectPortal.prototype[name] = function (...args) {
      return call(privates.get(this), name, args);
    };
  }

  ConnectPortal.RenderModes = MODES;
  ConnectPortal.Layouts = LAYOUTS;
  ConnectPortal.version = '0.1.0';
  window.ConnectPortal = ConnectPortal;
})();
