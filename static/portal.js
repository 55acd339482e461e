/*! Connect Portal host-page SDK 0.1.0 | MIT */
// Loaded by the host page from the portal's origin; talks to the portal only through its JSON
// API (bearer session token) and postMessage with exact origins.
(function () {
  'use strict';

  const SOURCE = 'connect-portal';
  const MODES = Object.freeze({ MODAL: 'modal', INLINE: 'inline' });
  const LAYOUTS = Object.freeze({ WIDE: 'wide', NARROW: 'narrow' });
  const POPUP_FEATURES = 'popup,width=520,height=700';
  const RESULT_PARAMS = ['portal_status', 'portal_app', 'portal_account', 'portal_error'];
  // document.currentScript is only set while this file first executes.
  const scriptSrc = document.currentScript && document.currentScript.src;
  // Per-instance state lives here so host scripts cannot reach the token through the instance.
  const privates = new WeakMap();

  function portalError(type, message, status) {
    const err = new Error(message || type);
    err.type = type;
    if (status) err.status = status;
    return err;
  }

  const invalid = (message) => portalError('invalid_argument', message);

  function need(value, name) {
    if (!value || typeof value !== 'string') throw invalid(name + ' is required');
  }

  function emit(s, name, payload) {
    const fns = s.listeners.get(name);
    if (!fns) return;
    for (const fn of [...fns]) {
      try {
        fn(payload);
      } catch (err) {
        // Surface the listener's bug in the console without skipping the other listeners.
        setTimeout(() => { throw err; });
      }
    }
  }

  function report(s, err) {
    // The failed initial session was already reported once; methods just reject with it.
    if (err !== s.fatal) emit(s, 'error', { type: err.type, message: err.message });
    return err;
  }

  function withReturnTo(url) {
    return url + (url.includes('?') ? '&' : '?') + 'return_to=' + encodeURIComponent(location.href);
  }

  async function send(url, init) {
    try {
      return await fetch(url, Object.assign({ mode: 'cors', credentials: 'omit' }, init));
    } catch (err) {
      throw portalError('network_error', 'Could not reach the connect portal: ' + err.message);
    }
  }

  async function http(method, url, body, token) {
    const headers = { Accept: 'application/json' };
    if (body) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = 'Bearer ' + token;
    const res = await send(url, { method, headers, body: body && JSON.stringify(body) });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = portalError(data.error || 'http_error', data.message || 'HTTP ' + res.status, res.status);
      err.body = data;
      throw err;
    }
    return data;
  }

  // Plain objects and arrays travel as JSON; strings, FormData, Blobs… as they are.
  function isJsonBody(body) {
    const proto = body && typeof body === 'object' && Object.getPrototypeOf(body);
    return Array.isArray(body) || proto === Object.prototype || proto === null;
  }

  // showFunction's query: params as base64url of their UTF-8 JSON.
  function base64url(value) {
    let bin = '';
    new TextEncoder().encode(JSON.stringify(value)).forEach((b) => { bin += String.fromCharCode(b); });
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function settleFunction(s, frame, err, params) {
    const pending = s.functions.get(frame);
    if (!pending) return;
    s.functions.delete(frame);
    if (err) pending.reject(err);
    else pending.resolve(params);
  }

  const cancelled = () => portalError('cancelled', 'The function form was closed.');

  async function createSession(s) {
    const data = await http('POST', s.api + '/sessions', s.credentials);
    if (typeof data.token !== 'string') throw portalError('invalid_response', 'No session token');
    s.token = data.token;
    s.expires = Date.parse(data.expires_at) || 0;
  }

  // Starts (or restarts, after authenticate()) the session; 'ready' or 'error' follows.
  function start(s) {
    s.fatal = null;
    const ready = s.ready = s.baseError ? Promise.reject(s.baseError) : createSession(s);
    // Emitted asynchronously, so listeners attached right after the constructor still hear it.
    ready.then(() => {
      emit(s, 'ready', { isReady: true });
      const r = s.redirectResult;
      s.redirectResult = null;
      if (r) emitRedirectResult(s, r);
    }, (err) => {
      report(s, err);
      s.fatal = err;
    });
    return ready;
  }

  async function sessionToken(s, force) {
    if (!s.ready) throw portalError('not_authenticated', 'Call authenticate(projectId, userToken) first.');
    await s.ready;
    // Renew a minute early so a request never starts with a token about to lapse.
    if (force || (s.expires && s.expires - Date.now() < 60000)) {
      s.renewing = s.renewing || createSession(s).finally(() => { s.renewing = null; });
      await s.renewing;
    }
    return s.token;
  }

  async function api(s, method, path, body) {
    try {
      return await http(method, s.api + path, body, await sessionToken(s));
    } catch (err) {
      // The server may have been restarted with new keys; one fresh session is worth a retry.
      if (err.status !== 401) throw err;
      return http(method, s.api + path, body, await sessionToken(s, true));
    }
  }

  function connectedPayload(result, appName) {
    const p = result.payload || {};
    return {
      app: p.app || { name: appName },
      connectedAccountId: p.connectedAccountId != null ? p.connectedAccountId : result.connectedAccountId,
      connected_accounts: p.connected_accounts || [],
    };
  }

  function listen(s) {
    if (s.onMessage) return;
    s.onMessage = (event) => {
      const data = event.data;
      if (event.origin !== s.origin || !event.source || !data || data.source !== SOURCE ||
          data.version !== 1) return;
      const payload = data.payload || {};
      const popupDone = s.popups.get(event.source);
      if (popupDone) {
        if (data.type === 'portal:connect-result') popupDone(payload);
        return;
      }
      const frame = [...s.inline, s.modal && s.modal.frame]
        .find((f) => f && f.contentWindow === event.source);
      if (!frame) return;
      switch (data.type) {
        case 'app-connected':
        case 'app-disconnected':
        case 'error':
          emit(s, data.type, payload);
          break;
        case 'portal:resize':
          if (s.inline.has(frame) && payload.height > 0) {
            frame.style.height = Math.min(Math.ceil(payload.height), 100000) + 'px';
          }
          break;
        case 'portal:close-request':
          if (s.modal && s.modal.frame === frame) closeModal(s);
          break;
        case 'portal:function-params': {
          const pending = s.functions.get(frame);
          if (!pending || pending.name !== payload.name || !payload.params ||
              typeof payload.params !== 'object') break;
          settleFunction(s, frame, null, payload.params);
          if (s.modal && s.modal.frame === frame) closeModal(s);
          break;
        }
        case 'portal:navigate': {
          let url = null;
          try {
            url = new URL(payload.url);
          } catch (err) { /* not an absolute URL: ignore */ }
          // Only ever navigate the host page to the portal itself.
          if (s.redirect && url && url.origin === s.origin) location.assign(withReturnTo(url.href));
          break;
        }
        // 'ready' from the frame is ignored: the SDK emits its own once the session exists.
      }
    };
    window.addEventListener('message', s.onMessage);
  }

  function styled(tag, style) {
    const el = document.createElement(tag);
    // Property assignment rather than a style attribute keeps host pages with strict CSP working.
    Object.assign(el.style, style);
    return el;
  }

  function openModal(s, frame, layout) {
    closeModal(s);
    const restore = document.activeElement;
    const overlay = styled('div', {
      position: 'fixed', top: '0', left: '0', width: '100%', height: '100%', zIndex: '2147483000',
      display: 'flex', alignItems: 'center', justifyContent: 'center', background: 'rgba(15,23,42,.55)',
    });
    const dialog = styled('div', {
      width: layout === LAYOUTS.NARROW ? 'min(420px, 100vw - 16px)' : 'min(960px, 100vw - 16px)',
      height: 'min(720px, 90vh)', background: '#fff', borderRadius: '8px', overflow: 'hidden',
      boxShadow: '0 12px 48px rgba(0,0,0,.3)',
    });
    dialog.setAttribute('role', 'dialog');
    dialog.setAttribute('aria-modal', 'true');
    dialog.setAttribute('aria-label', frame.title);
    Object.assign(frame.style, { display: 'block', width: '100%', height: '100%', border: '0' });
    // Tab leaving the iframe lands on a sentinel, which hands focus straight back.
    const sentinel = () => {
      const el = document.createElement('span');
      el.tabIndex = 0;
      el.addEventListener('focus', () => frame.focus());
      return el;
    };
    dialog.append(sentinel(), frame, sentinel());
    overlay.append(dialog);
    overlay.addEventListener('click', (e) => { if (e.target === overlay) closeModal(s); });
    const onKey = (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        closeModal(s);
      }
    };
    document.addEventListener('keydown', onKey, true);
    s.modal = { overlay, frame, restore, onKey, overflow: document.body.style.overflow };
    document.body.style.overflow = 'hidden';
    document.body.append(overlay);
    frame.focus();
  }

  function closeModal(s) {
    const m = s.modal;
    if (!m) return;
    s.modal = null;
    document.removeEventListener('keydown', m.onKey, true);
    m.overlay.remove();
    document.body.style.overflow = m.overflow;
    if (m.restore && m.restore.isConnected && m.restore.focus) m.restore.focus();
    settleFunction(s, m.frame, cancelled());
    emit(s, 'modal-closed', {});
  }

  // extra: {query, title, onFrame(frame)}; resolves once the iframe has loaded.
  async function show(s, path, mode, containerId, layout, extra) {
    const x = extra || {};
    mode = mode || MODES.MODAL;
    layout = layout || LAYOUTS.WIDE;
    if (!Object.values(MODES).includes(mode)) throw invalid('Unknown renderMode: ' + mode);
    if (!Object.values(LAYOUTS).includes(layout)) throw invalid('Unknown layout: ' + layout);
    const container = mode === MODES.INLINE && document.getElementById(containerId);
    if (mode === MODES.INLINE && !container) throw invalid('No element with id ' + containerId);
    const token = await sessionToken(s);
    const frame = document.createElement('iframe');
    frame.title = x.title || 'Connect apps';
    // The token travels in the fragment: never sent to the server, never in a Referer.
    frame.src = s.base + '/embed/' + path + '?mode=' + mode + '&layout=' + layout + (x.query || '') +
      '#token=' + encodeURIComponent(token);
    if (x.onFrame) x.onFrame(frame);
    const loaded = new Promise((resolve) => frame.addEventListener('load', resolve, { once: true }));
    listen(s);
    if (container) {
      for (const f of s.inline) {
        if (!f.isConnected || f.parentNode === container) {
          f.remove();
          s.inline.delete(f);
          settleFunction(s, f, cancelled());
        }
      }
      Object.assign(frame.style, { display: 'block', width: '100%', height: '480px', border: '0' });
      s.inline.add(frame);
      container.append(frame);
    } else {
      openModal(s, frame, layout);
    }
    await loaded;
    if (s.modal && s.modal.frame === frame) frame.focus();
  }

  function waitForResult(s, popup, attemptId, appName) {
    return new Promise((resolve) => {
      let polling = false;
      let done = false;
      const finish = (result) => {
        if (done) return;
        done = true;
        clearInterval(pollTimer);
        clearInterval(closedTimer);
        s.popups.delete(popup);
        resolve(result);
      };
      const failed = (type, message) => finish({ status: 'failed', error: { type, message } });
      const poll = async (final) => {
        if (polling && !final) return;
        polling = true;
        try {
          const attempt = await api(s, 'GET', '/connect-attempts/' + encodeURIComponent(attemptId));
          if (attempt.status !== 'pending') finish(attempt);
          else if (final) failed('window_closed', 'The connect window was closed before ' + appName + ' was connected.');
        } catch (err) {
          // Transient server or network trouble is retried by the next tick; a 4xx will not heal.
          if (final || (err.status >= 400 && err.status < 500 && err.status !== 429)) {
            failed(err.type, err.message);
          }
        } finally {
          polling = false;
        }
      };
      s.popups.set(popup, (result) => {
        if (result.attemptId == null || String(result.attemptId) === String(attemptId)) finish(result);
      });
      listen(s);
      // The popup may lose window.opener (COOP on the provider's pages), so the attempt status
      // on the server is the fallback channel.
      const pollTimer = setInterval(poll, 1000);
      const closedTimer = setInterval(() => {
        if (!popup.closed) return;
        clearInterval(pollTimer);
        clearInterval(closedTimer);
        poll(true);
      }, 500);
    });
  }

  async function connectInPopup(s, appName, popup) {
    let ticket;
    try {
      ticket = await api(s, 'POST', '/connect-tickets', { app: appName, opener: 'host' });
    } catch (err) {
      popup.close();
      throw report(s, err);
    }
    try {
      popup.location.href = ticket.connect_url;
    } catch (err) { /* closed meanwhile: the closed-window check settles the attempt */ }
    const result = await waitForResult(s, popup, ticket.attempt_id, appName);
    if (result.status === 'connected') {
      const payload = connectedPayload(result, appName);
      emit(s, 'app-connected', payload);
      return payload.connectedAccountId;
    }
    const e = result.error || {};
    throw report(s, portalError(e.type || 'connect_failed', e.message || 'Connecting ' + appName + ' failed.'));
  }

  function popupBlocked(s, appName) {
    const err = report(s, portalError('popup_blocked', 'The browser blocked the connect window' +
      (s.redirect ? '; continuing in this window.' : '.')));
    if (s.redirect) {
      api(s, 'POST', '/connect-tickets', { app: appName, opener: 'host' })
        .then((t) => location.assign(withReturnTo(t.connect_url)), (e) => report(s, e));
    }
    return Promise.reject(err);
  }

  // Redirect mode comes back to the host page with the result in the query string.
  function takeRedirectResult() {
    const query = new URLSearchParams(location.search);
    const status = query.get('portal_status');
    if (!status) return null;
    const result = {
      status, app: query.get('portal_app'), account: query.get('portal_account'), error: query.get('portal_error'),
    };
    RESULT_PARAMS.forEach((k) => query.delete(k));
    const search = query.toString();
    // Stripped so a reload or a shared link does not replay the event.
    history.replaceState(history.state, '', location.pathname + (search ? '?' + search : '') + location.hash);
    return result;
  }

  async function emitRedirectResult(s, r) {
    if (r.status === 'connected' && r.app) {
      try {
        const app = encodeURIComponent(r.app);
        const [info, list] = await Promise.all([
          api(s, 'GET', '/apps/' + app), api(s, 'GET', '/connected-accounts?app=' + app),
        ]);
        const a = info.app || {};
        emit(s, 'app-connected', {
          app: { name: a.name, title: a.title, icon_url: a.icon_url },
          connectedAccountId: r.account,
          connected_accounts: list.connected_accounts || [],
        });
      } catch (err) {
        report(s, err);
      }
    } else if (r.status === 'failed') {
      report(s, portalError(r.error || 'connect_failed', 'Connecting ' + (r.app || 'the app') + ' failed.'));
    }
  }

  class ConnectPortal {
    constructor(options) {
      const o = options || {};
      const s = {
        listeners: new Map(), inline: new Set(), popups: new Map(), modal: null, onMessage: null,
        redirect: o.redirectOnPopupBlocked !== false,
        functions: new Map(), redirectResult: takeRedirectResult(),
      };
      privates.set(this, s);
      this.eventEmitter = {
        on(name, fn) {
          if (typeof fn !== 'function') return;
          if (!s.listeners.has(name)) s.listeners.set(name, new Set());
          s.listeners.get(name).add(fn);
        },
        unsub(name, fn) {
          if (fn) s.listeners.get(name)?.delete(fn);
          else s.listeners.delete(name);
        },
      };
      try {
        const base = new URL(o.baseUrl || scriptSrc.replace(/\/static\/portal\.js([?#].*)?$/, ''), location.href);
        base.search = base.hash = '';
        s.base = base.href.replace(/\/+$/, '');
        s.origin = base.origin;
        s.api = s.base + '/api/v1';
      } catch (err) {
        s.baseError = invalid('baseUrl is required when portal.js is not loaded by a script tag');
      }
      // With {appKey, userId, hash} the session starts now; without, authenticate() starts it.
      if (o.appKey || o.userId || o.hash || s.baseError) {
        s.project = o.appKey;
        s.credentials = { appKey: o.appKey, userId: o.userId, hash: o.hash };
        start(s);
      }
    }

    // Paragon's authenticate(): a JWT the host backend signed (sub = user id, aud = projectId).
    async authenticate(projectId, userToken) {
      const s = privates.get(this);
      need(projectId, 'projectId');
      need(userToken, 'userToken');
      Object.assign(s, { project: projectId, credentials: { projectId, userToken }, token: null, expires: 0 });
      await start(s);
    }

    // Paragon's connect(): the app's page of the portal, in the modal.
    connect(integrationType) {
      return this.showApp(integrationType, MODES.MODAL);
    }

    // Paragon's getUser(): {authenticated: true, userId, integrations} or {authenticated: false}.
    async getUser() {
      try {
        return await api(privates.get(this), 'GET', '/user');
      } catch (err) {
        if (err.type === 'not_authenticated' || err.status === 401 || err.status === 403) {
          return { authenticated: false };
        }
        throw err;
      }
    }

    // Paragon's event(): an App Event for the user, answered 202 {id, name, runs}.
    async event(name, payload) {
      const s = privates.get(this);
      need(name, 'name');
      if (!s.project) throw portalError('not_authenticated', 'Call authenticate(projectId, userToken) first.');
      return api(s, 'POST', '/projects/' + encodeURIComponent(s.project) + '/sdk/events/trigger',
        { name, payload: payload == null ? {} : payload });
    }

    async showApps(renderMode, containerId, layout) {
      await show(privates.get(this), 'apps', renderMode, containerId, layout);
    }

    async showApp(appName, renderMode, containerId, layout) {
      need(appName, 'appName');
      await show(privates.get(this), 'apps/' + encodeURIComponent(appName), renderMode, containerId, layout);
    }

    connectApp(appName) {
      const s = privates.get(this);
      if (!appName || typeof appName !== 'string') return Promise.reject(invalid('appName is required'));
      // Popup blockers honour window.open only inside the user's click, so no await before it.
      const popup = window.open('about:blank', 'connect-portal-' + appName, POPUP_FEATURES);
      return popup ? connectInPopup(s, appName, popup) : popupBlocked(s, appName);
    }

    async disconnectApp(appName, connectedAccountId) {
      const s = privates.get(this);
      need(appName, 'appName');
      let id = connectedAccountId;
      if (id == null || id === '') {
        const accounts = await this.getConnectedAccounts(appName);
        if (accounts.length !== 1) {
          throw invalid('connectedAccountId is required: ' + appName + ' has ' + accounts.length + ' connected accounts');
        }
        id = accounts[0].id;
      }
      const body = await api(s, 'DELETE', '/connected-accounts/' + encodeURIComponent(id));
      emit(s, 'app-disconnected', body);
    }

    async isAppConnected(appName) {
      return (await this.getConnectedAccounts(appName)).length > 0;
    }

    async getConnectedAccounts(appName) {
      need(appName, 'appName');
      const data = await api(privates.get(this), 'GET', '/connected-accounts?app=' + encodeURIComponent(appName));
      return data.connected_accounts || [];
    }

    async getFunction(functionName) {
      need(functionName, 'functionName');
      return api(privates.get(this), 'GET', '/functions/' + encodeURIComponent(functionName));
    }

    // Resolves with the params the user submitted; rejects 'cancelled' when the form is closed.
    async showFunction(functionName, params, connectedAccountId, renderMode, containerId, layout) {
      const s = privates.get(this);
      need(functionName, 'functionName');
      if (params != null && !isJsonBody(params)) throw invalid('params must be an object');
      let query;
      try {
        query = '&params=' + base64url(params || {});
      } catch (err) {
        throw invalid('params must be JSON-serialisable: ' + err.message);
      }
      if (connectedAccountId) query += '&connectedAccountId=' + encodeURIComponent(connectedAccountId);
      return new Promise((resolve, reject) => {
        const onFrame = (frame) => s.functions.set(frame, { name: functionName, resolve, reject });
        show(s, 'functions/' + encodeURIComponent(functionName), renderMode, containerId, layout,
          { query, title: 'Function form', onFrame }).catch(reject);
      });
    }

    async invokeFunction(functionName, params, connectedAccountId) {
      need(functionName, 'functionName');
      const body = { params: params || {} };
      if (connectedAccountId) body.connectedAccountId = String(connectedAccountId);
      try {
        return await api(privates.get(this), 'POST', '/functions/' + encodeURIComponent(functionName) + '/invoke', body);
      } catch (err) {
        // Not executed (invalid params, nothing connected) is a result in the seed, not a failure.
        if ((err.status === 400 || err.status === 404) && err.body && Array.isArray(err.body.error_details)) {
          return err.body;
        }
        throw err;
      }
    }

    // Paragon's request(): the app's API through the portal's credential-injecting proxy.
    async request(app, path, options) {
      const s = privates.get(this);
      need(app, 'app');
      const o = options || {};
      let url = s.api + '/proxy/' + encodeURIComponent(app) + '/' + String(path == null ? '' : path).replace(/^\/+/, '');
      if (o.connectedAccountId) {
        url += (url.includes('?') ? '&' : '?') + 'connectedAccountId=' + encodeURIComponent(o.connectedAccountId);
      }
      const headers = new Headers(o.headers);
      let body = o.body;
      if (body != null && isJsonBody(body)) {
        body = JSON.stringify(body);
        if (!headers.has('Content-Type')) headers.set('Content-Type', 'application/json');
      }
      headers.set('Authorization', 'Bearer ' + await sessionToken(s));
      const res = await send(url, { method: (o.method || 'GET').toUpperCase(), headers, body });
      const text = await res.text();
      let data = text || null;
      if (text && /json/i.test(res.headers.get('Content-Type') || '')) {
        try {
          data = JSON.parse(text);
        } catch (err) { /* not JSON after all: keep the text */ }
      }
      if (!res.ok) {
        const err = portalError('http_error', (data && data.message) || 'HTTP ' + res.status, res.status);
        err.body = data;
        throw err;
      }
      return data;
    }

    close() {
      const s = privates.get(this);
      closeModal(s);
      s.inline.forEach((f) => {
        f.remove();
        settleFunction(s, f, cancelled());
      });
      s.inline.clear();
      s.popups.forEach((done) => done({ status: 'failed', error: { type: 'closed', message: 'The portal was closed.' } }));
      if (s.onMessage) window.removeEventListener('message', s.onMessage);
      s.onMessage = null;
      return Promise.resolve();
    }
  }

  ConnectPortal.RenderModes = MODES;
  ConnectPortal.Layouts = LAYOUTS;
  ConnectPortal.version = '0.1.0';
  window.ConnectPortal = ConnectPortal;
})();
