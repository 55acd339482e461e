/*! Connect Portal frame script 0.1.0 | MIT */
// Runs inside every portal page: the embed shell (iframe), mounted pages and the connect popup.
(function () {
  'use strict';

  const SOURCE = 'connect-portal';
  const POPUP_FEATURES = 'popup,width=520,height=700';
  // The page's few sentences of our own, in its language: JSON data in base.html (no code, so
  // the CSP holds; portal/i18n.py frame_strings). English when a page has none (rpc.html).
  const stringsEl = document.getElementById('portal-strings');
  const L = stringsEl ? JSON.parse(stringsEl.textContent) : {};
  const t = (key, english, arg) => (L[key] || english).replace('%s', arg);
  const EXPIRED = t('expired', 'Your session has expired; reload the page.');
  // A token that was never valid (wrong, cut short, from another portal, or missing) is not an
  // expired session: say what happened (GET /session answers 401 invalid_token).
  const TOKEN_ERRORS = {
    invalid_token: ['invalid_token', t('invalid_token', 'This page could not be opened: its access link is missing or not valid. ' +
      'Reload the page; if it happens again, contact the support of the site you are on.')],
  };
  const FOCUSABLE = 'a[href], area[href], button, input:not([type="hidden"]), select, textarea, iframe, ' +
    '[tabindex], [contenteditable="true"]';
  const body = document.body;
  const ds = body.dataset;
  const page = ds.portalPage;
  const mode = ds.portalMode;
  const api = ds.portalApi || '';
  const mounted = ds.portalMounted === '1';
  const framed = window.parent !== window;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : '';
  const mainEl = document.getElementById('portal-main');
  let contentUrl = mainEl ? mainEl.dataset.portalContentUrl : null;
  // The session token only ever lives in this closure: not in the URL, not in storage.
  let token = null;
  // The one origin this frame ever posts to; known once the server has told us (never a wildcard).
  let hostOrigin = mounted ? location.origin : null;
  let expired = false;
  const confirming = new WeakMap();

  // Connect and disconnect successes, said by screen readers: one live region outside
  // #portal-main, there from the start (a region added with its text is often not announced)
  // and never swapped by htmx.
  let announcer = null;
  function announce(text) {
    if (!announcer) return;
    announcer.textContent = '';
    // The next frame: the same words twice in a row are still a change.
    requestAnimationFrame(() => { announcer.textContent = text; });
  }

  function post(type, payload) {
    const message = { source: SOURCE, version: 1, type, payload };
    if (mounted) {
      window.dispatchEvent(new CustomEvent('connect-portal:' + type, { detail: payload }));
      // The browser drops this unless the parent really is on our own origin.
      if (framed) window.parent.postMessage(message, location.origin);
    } else if (framed && hostOrigin) {
      window.parent.postMessage(message, hostOrigin);
    }
  }

  function sameOrigin(url) {
    try {
      return new URL(url, location.href).origin === location.origin;
    } catch (err) {
      return false;
    }
  }

  function withReturnTo(url) {
    return url + (url.includes('?') ? '&' : '?') + 'return_to=' + encodeURIComponent(location.href);
  }

  function notice(text, className) {
    const p = document.createElement('p');
    p.className = className;
    p.setAttribute('role', 'alert');
    p.textContent = text;
    return p;
  }

  // code: the server's error code for the refusal (token_expired, invalid_token, csrf_failed…).
  function sessionExpired(code) {
    if (expired) return;
    expired = true;
    const [type, message] = (!mounted && TOKEN_ERRORS[code]) || ['session_expired', EXPIRED];
    if (mainEl) mainEl.replaceChildren(notice(message, 'portal-alert portal-alert--error'));
    if (hostOrigin || !framed) {
      post('error', { type, message });
      return;
    }
    // The token was refused before the server named the host page's origin: the parent's
    // origin (where the browser tells it) is told, once the server confirms it is allowed.
    const hint = location.ancestorOrigins && location.ancestorOrigins[0];
    if (!hint) return;
    fetch(api + '/origin-check?origin=' + encodeURIComponent(hint), { credentials: 'omit' })
      .then((res) => res.json())
      .then((check) => {
        if (check.allowed && check.origin === hint) {
          window.parent.postMessage({ source: SOURCE, version: 1, type: 'error', payload: { type, message } }, hint);
        }
      }, () => {});
  }

  // --- Settled state ------------------------------------------------------------------------
  // body[data-portal-state] (the body is never swapped): 'loading' until the page's own content
  // is in (the marketplace shell: until the user's version of its first paint has replaced it),
  // then 'busy' while a request is in flight or a swap is settling, 'ready' once nothing is.
  // Tests and host tooling wait on this, never on elements that a swap replaces.
  let booting = page === 'shell' && !mounted;
  let fetches = 0;
  const inFlight = new Set();
  let reloading = null; // reload()'s request (sent from the body) while it is in flight

  function updateState() {
    const busy = fetches > 0 || inFlight.size > 0 || document.querySelector('.htmx-swapping, .htmx-settling');
    const state = booting ? 'loading' : busy ? 'busy' : 'ready';
    if (ds.portalState !== state) ds.portalState = state;
  }

  function booted() {
    booting = false;
    updateState();
  }

  // htmx:beforeSend comes right before xhr.send(); the xhr's own loadend follows its load handler
  // (where htmx swaps and marks the new content .htmx-settling) whatever the outcome, and even
  // when the element that sent it has been swapped away meanwhile.
  body.addEventListener('htmx:beforeSend', (e) => {
    const xhr = e.detail.xhr;
    // A request the user starts while reload() is under way (a card clicked, a search typed as
    // the user's version of the first paint is on its way) supersedes it: its later answer
    // must not swap the user's choice away.
    if (e.detail.elt === body) reloading = xhr;
    else if (reloading) reloading.abort();
    inFlight.add(xhr);
    xhr.addEventListener('loadend', () => {
      if (reloading === xhr) reloading = null;
      inFlight.delete(xhr);
      updateState();
    });
    updateState();
  });
  body.addEventListener('htmx:afterSettle', updateState);

  async function request(method, path) {
    fetches += 1;
    updateState();
    try {
      return await requestOnce(method, path);
    } finally {
      fetches -= 1;
      updateState();
    }
  }

  async function requestOnce(method, path) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    // Mounted: the cookie session needs same-origin proof on every API call, GET included.
    if (mounted) headers['X-CSRFToken'] = csrf;
    const res = await fetch(api + path, { method, headers, credentials: mounted ? 'same-origin' : 'omit' });
    const data = await res.json().catch(() => ({}));
    // A stale CSRF token (Flask-WTF's time limit) heals like an expired session: by a reload.
    if (res.status === 401 || (res.status === 403 && data.error === 'csrf_failed')) sessionExpired(data.error);
    if (!res.ok) {
      const err = new Error(data.message || 'Request failed (HTTP ' + res.status + ')');
      err.type = data.error || 'http_error';
      err.status = res.status;
      throw err;
    }
    return data;
  }

  // Resolves once the fresh content is in place (never for a mounted page's full reload).
  function reload() {
    if (expired) return Promise.resolve();
    if (contentUrl && window.htmx) {
      return Promise.resolve(window.htmx.ajax('GET', contentUrl, { target: '#portal-main', swap: 'innerHTML' }))
        .catch(() => {});
    } else if (mounted) {
      location.reload();
    }
    return Promise.resolve();
  }

  // --- Connect failures: a plain-language message and Retry in the app page ------------------

  const FAILURE_KEY = 'connect-portal:connect-failure';
  const WINDOW_CLOSED = t('window_closed', 'The window was closed before the connection finished.');

  function showFailure(text) {
    const old = document.querySelector('[data-portal-connect-failure]');
    if (old) old.remove();
    const box = document.querySelector('.portal-connect');
    if (!box || !text) return;
    const alert = notice('', 'portal-alert portal-alert--danger portal-connect-failure');
    alert.dataset.portalConnectFailure = '';
    const span = document.createElement('span');
    span.className = 'portal-connect-failure__text';
    span.textContent = text;
    const retry = document.createElement('button');
    retry.type = 'button';
    retry.className = 'portal-button portal-button--secondary portal-connect-failure__retry';
    retry.dataset.portalRetry = '';
    retry.textContent = t('retry', 'Retry');
    alert.append(span, retry);
    box.before(alert);
    if (document.hasFocus()) retry.focus();
  }

  // A mounted page reloads in full; the message waits in sessionStorage for the new page.
  function failed(text) {
    if (mounted && !(contentUrl && window.htmx)) {
      try {
        sessionStorage.setItem(FAILURE_KEY, text);
      } catch (err) { /* no storage: the host page's error event still tells */ }
    }
    reload().then(() => showFailure(text));
  }

  function showStoredFailure() {
    let text = null;
    try {
      text = sessionStorage.getItem(FAILURE_KEY);
      sessionStorage.removeItem(FAILURE_KEY);
    } catch (err) { /* no storage */ }
    if (text) showFailure(text);
  }

  // --- htmx wiring -------------------------------------------------------------------------

  body.addEventListener('htmx:configRequest', (e) => {
    const d = e.detail;
    if (!sameOrigin(d.path)) return; // never hand the token to anyone else
    if (token) d.headers.Authorization = 'Bearer ' + token;
    if (mounted) d.headers['X-CSRFToken'] = csrf;
    // The fragment speaks the page's language (chosen by ?lang=, portal/i18n.py).
    if (document.documentElement.lang) d.headers['Accept-Language'] = document.documentElement.lang;
  });

  body.addEventListener('htmx:afterSwap', (e) => {
    const d = e.detail;
    if (!d.target || d.target.id !== 'portal-main') return;
    if (d.pathInfo && d.pathInfo.requestPath) contentUrl = d.pathInfo.requestPath;
    // The clicked card or button was swapped away; give keyboard users a sensible place to be.
    const active = document.activeElement;
    if (document.hasFocus() && (!active || active === body)) {
      const heading = d.target.querySelector('h1, h2');
      if (heading) {
        heading.tabIndex = -1;
        heading.focus();
      }
    }
  });

  body.addEventListener('htmx:responseError', (e) => {
    const d = e.detail;
    if (d.xhr && (d.xhr.status === 401 || (mounted && d.xhr.status === 403))) {
      let code = null;
      try {
        code = JSON.parse(d.xhr.responseText).error;
      } catch (err) { /* an HTML error page: no code */ }
      // A page's 401 does not say why; the API does (requestOnce reports it first).
      const done = () => sessionExpired(code);
      if (code || mounted) done();
      else request('GET', '/session').then(done, done);
    }
    else if (mainEl && d.target === mainEl) {
      mainEl.replaceChildren(notice(t('http_error', 'Something went wrong (HTTP %s). Please try again.', d.xhr.status),
        'portal-alert portal-alert--error'));
    }
  });

  body.addEventListener('htmx:sendError', (e) => {
    if (mainEl && e.detail.target === mainEl) {
      mainEl.replaceChildren(notice(t('unreachable', 'The portal could not be reached. Please try again.'),
        'portal-alert portal-alert--error'));
    }
  });

  // --- Function params (showFunction) ------------------------------------------------------

  // The done state of a function form carries its result; hand it over exactly once.
  function sendFunctionParams() {
    const el = document.getElementById('portal-function-params');
    if (!el) return false;
    el.remove();
    let data = null;
    try {
      data = JSON.parse(el.textContent);
    } catch (err) { /* malformed block: nothing to send */ }
    if (data && mounted) {
      window.dispatchEvent(new CustomEvent('connect-portal:function-params', { detail: data }));
    } else if (data) {
      post('portal:function-params', data);
    }
    return true;
  }

  body.addEventListener('htmx:afterSettle', () => {
    const section = document.getElementById('portal-function');
    if (!section) return;
    const sent = sendFunctionParams();
    const active = document.activeElement;
    // The submit button was swapped away: put focus on the first field to fix, or the heading.
    if (active && active !== body && section.contains(active)) return;
    const target = sent ? section.querySelector('h2') : section.querySelector('[aria-invalid="true"]');
    if (!target) return;
    if (sent) target.tabIndex = -1;
    target.focus();
  });

  // --- Connect -----------------------------------------------------------------------------

  function connect(btn) {
    if (btn.getAttribute('aria-busy') === 'true') return;
    const app = btn.dataset.portalApp;
    const url = new URL(btn.dataset.portalConnectUrl, location.href).href;
    const attemptId = btn.dataset.portalAttemptId;
    // Must run in the click's own task, before anything async, or popup blockers step in.
    const popup = window.open(url, 'connect-portal-' + app, POPUP_FEATURES);
    if (!popup) {
      post('error', { type: 'popup_blocked', message: 'The browser blocked the connect window; continuing in this window.' });
      if (mounted || !framed) location.assign(withReturnTo(url));
      else post('portal:navigate', { url });
      return;
    }

    const label = btn.textContent;
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
    btn.textContent = t('waiting', 'Waiting for %s…', btn.dataset.portalAppTitle || app);
    let done = false;
    let polling = false;

    const finish = (result) => {
      if (done) return;
      done = true;
      clearInterval(pollTimer);
      clearInterval(closedTimer);
      window.removeEventListener('message', onMessage);
      if (result.status === 'connected') {
        // (A failure is said by the role=alert notice with its Retry, see showFailure.)
        announce(t('connected', 'Connected %s.', btn.dataset.portalAppTitle || app));
        const p = result.payload || {};
        post('app-connected', {
          app: p.app || { name: app },
          connectedAccountId: p.connectedAccountId != null ? p.connectedAccountId : result.connectedAccountId,
          connected_accounts: p.connected_accounts || [],
        });
      } else if (result.error) {
        post('error', {
          type: result.error.type || 'connect_failed',
          message: result.error.message || 'Connecting ' + app + ' failed.',
        });
      }
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
      btn.textContent = label;
      // The ticket in the page is single-use: fetch the page again for a fresh one (and say
      // why nothing was connected, with a Retry that uses it).
      if (result.status !== 'connected' && result.error) {
        failed(result.error.message || t('failed', 'Connecting %s failed.', btn.dataset.portalAppTitle || app));
      } else {
        reload();
      }
    };
    const windowClosed = { status: 'failed', error: { type: 'window_closed', message: WINDOW_CLOSED } };

    const onMessage = (e) => {
      const d = e.data;
      if (e.source !== popup || e.origin !== location.origin || !d || d.source !== SOURCE ||
          d.version !== 1 || d.type !== 'portal:connect-result') return;
      const result = d.payload || {};
      if (result.attemptId != null && attemptId && String(result.attemptId) !== attemptId) return;
      finish(result);
    };

    const poll = (final) => {
      if (!attemptId) {
        if (final) finish(windowClosed);
        return;
      }
      if (polling && !final) return;
      polling = true;
      request('GET', '/connect-attempts/' + encodeURIComponent(attemptId)).then((attempt) => {
        if (attempt.status !== 'pending') finish(attempt);
        else if (final) finish(windowClosed);
      }, (err) => {
        // 401 and csrf_failed were already reported as session_expired; other 4xx will not heal by retrying.
        if (err.status === 401 || err.type === 'csrf_failed') finish({ status: 'failed' });
        else if (final || (err.status >= 400 && err.status < 500 && err.status !== 429)) {
          finish({ status: 'failed', error: { type: err.type, message: err.message } });
        }
      }).finally(() => { polling = false; });
    };

    window.addEventListener('message', onMessage);
    // Providers with COOP sever window.opener, so the server-side attempt status is the backstop.
    const pollTimer = setInterval(poll, 1000);
    const closedTimer = setInterval(() => {
      if (!popup.closed) return;
      clearInterval(pollTimer);
      clearInterval(closedTimer);
      poll(true);
    }, 500);
  }

  // --- Disconnect --------------------------------------------------------------------------

  // The row's Cancel (templates/portal/_app_page.html); a host's own older template may have none.
  function cancelOf(btn) {
    const row = btn.closest('[data-portal-account]');
    return row ? row.querySelector('[data-portal-disconnect-cancel]') : null;
  }

  function unconfirm(btn, refocus) {
    const pending = confirming.get(btn);
    if (!pending) return;
    clearTimeout(pending.timer);
    confirming.delete(btn);
    btn.textContent = pending.label;
    delete btn.dataset.portalConfirming;
    const cancel = cancelOf(btn);
    if (cancel) cancel.hidden = true;
    if (refocus) btn.focus();
  }

  function disconnect(btn) {
    if (btn.getAttribute('aria-busy') === 'true') return;
    const pending = confirming.get(btn);
    if (!pending) {
      const cancel = cancelOf(btn);
      btn.setAttribute('aria-live', 'polite');
      // With a Cancel the question waits for the user; without one it lapses after 5 s.
      confirming.set(btn, { label: btn.textContent, timer: cancel ? null : setTimeout(() => unconfirm(btn, false), 5000) });
      btn.textContent = t('confirm_disconnect', 'Confirm disconnect');
      btn.dataset.portalConfirming = '';
      if (cancel) cancel.hidden = false;
      return;
    }
    unconfirm(btn, false);
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
    btn.textContent = t('disconnecting', 'Disconnecting…');
    const row = btn.closest('[data-portal-account]') || btn.parentNode;
    const old = row && row.querySelector('[data-portal-inline-error]');
    if (old) old.remove();
    request('DELETE', '/connected-accounts/' + encodeURIComponent(btn.dataset.portalAccountId)).then((data) => {
      announce(t('disconnected', 'Disconnected.'));
      post('app-disconnected', data);
      reload();
    }, (err) => {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
      btn.textContent = pending.label;
      if (err.status === 401 || err.type === 'csrf_failed') return;
      const p = notice(err.message, 'portal-inline-error');
      p.dataset.portalInlineError = '';
      if (row && row !== btn.parentNode) row.append(p);
      else btn.after(p);
    });
  }

  // Escape on a row that asks "Confirm disconnect" cancels that question (before the modal's
  // own Escape, which this listener, registered first, then skips).
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || !(e.target instanceof Element)) return;
    const row = e.target.closest('[data-portal-account]');
    const btn = row && row.querySelector('[data-portal-disconnect]');
    if (btn && confirming.has(btn)) {
      e.preventDefault();
      unconfirm(btn, true);
    }
  });

  // --- Clicks (delegated, so swapped-in content needs no re-binding) -------------------------

  document.addEventListener('click', (e) => {
    const target = e.target instanceof Element ? e.target : null;
    if (!target) return;
    const connectBtn = target.closest('[data-portal-connect]');
    const disconnectBtn = target.closest('[data-portal-disconnect]');
    if (connectBtn) {
      e.preventDefault();
      connect(connectBtn);
    } else if (target.closest('[data-portal-retry]')) {
      // In the click's own task, so the new connect window is not blocked.
      const fresh = document.querySelector('[data-portal-connect]');
      const box = target.closest('[data-portal-connect-failure]');
      if (box) box.remove();
      if (fresh) connect(fresh);
    } else if (disconnectBtn) {
      e.preventDefault();
      disconnect(disconnectBtn);
    } else if (target.closest('[data-portal-disconnect-cancel]')) {
      const row = target.closest('[data-portal-account]');
      const btn = row && row.querySelector('[data-portal-disconnect]');
      if (btn) unconfirm(btn, true);
    } else if (target.closest('[data-portal-close]')) {
      post('portal:close-request', {});
    } else if (target.closest('[data-portal-window-close]')) {
      window.close();
    }
  });

  // --- Keyboard ----------------------------------------------------------------------------

  function isTyping(el) {
    return el instanceof Element && (el.closest('input, textarea, select') !== null || el.isContentEditable);
  }

  function trapTab(e) {
    const items = [...document.querySelectorAll(FOCUSABLE)]
      .filter((el) => el.tabIndex >= 0 && !el.disabled && el.getClientRects().length > 0);
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    const active = document.activeElement;
    const outside = !items.includes(active);
    if (e.shiftKey ? active === first || outside : active === last || outside) {
      e.preventDefault();
      (e.shiftKey ? last : first).focus();
    }
  }

  const GRID_KEYS = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: 'up', ArrowDown: 'down' };

  function moveInGrid(e, card) {
    const cards = [...document.querySelectorAll('#portal-app-grid a.portal-card')];
    const index = cards.indexOf(card);
    // Columns follow the responsive CSS grid, so count the cards sharing the first row.
    const top = (el) => Math.round(el.getBoundingClientRect().top);
    const columns = Math.max(1, cards.filter((c) => top(c) === top(cards[0])).length);
    const step = GRID_KEYS[e.key];
    const next = cards[index + (step === 'up' ? -columns : step === 'down' ? columns : step)];
    if (next) {
      e.preventDefault();
      next.focus();
    }
  }

  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    const target = e.target;
    if (mode === 'modal' && e.key === 'Escape') {
      // Esc in a non-empty search box clears the search first, as browsers do natively.
      if (!(target instanceof HTMLInputElement && target.type === 'search' && target.value)) {
        post('portal:close-request', {});
      }
    } else if (mode === 'modal' && e.key === 'Tab') {
      trapTab(e);
    } else if (e.key === '/' && !isTyping(target)) {
      const search = document.querySelector('input[type="search"][name="q"]');
      if (search) {
        e.preventDefault();
        search.focus();
      }
    } else if (e.key in GRID_KEYS && target instanceof Element) {
      const card = target.closest('#portal-app-grid a.portal-card');
      if (card) moveInGrid(e, card);
    }
  });

  // A host page's modal keeps the keyboard (portal.js): every other portal view says when it
  // got the focus, since the host page cannot see focus moving between cross-origin frames.
  if (framed && mode !== 'modal') addEventListener('focus', () => post('portal:focus', {}));

  // The SDK tells every view of the page when an account changed in another one (a function
  // form keeps what the user typed: it is not fetched again).
  if (framed) {
    addEventListener('message', (e) => {
      const d = e.data;
      if (e.source === window.parent && e.origin === hostOrigin && d && d.source === SOURCE &&
          d.version === 1 && d.type === 'portal:refresh' && !document.getElementById('portal-function')) reload();
    });
  }

  // --- Inline height -----------------------------------------------------------------------

  let resizeQueued = false;
  let lastHeight = 0;

  function measure() {
    resizeQueued = false;
    // The root's box height, not scrollHeight: scrollHeight never drops below the iframe's own
    // viewport, so the iframe could grow but never shrink back.
    const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height === lastHeight) return;
    lastHeight = height;
    post('portal:resize', { height });
  }

  function scheduleResize(force) {
    if (mode !== 'inline') return;
    if (force) lastHeight = 0;
    if (resizeQueued) return;
    resizeQueued = true;
    requestAnimationFrame(measure);
  }

  if (mode === 'inline' && window.ResizeObserver) {
    const observer = new ResizeObserver(() => scheduleResize(false));
    observer.observe(document.documentElement);
    observer.observe(body);
  }

  // --- Page start --------------------------------------------------------------------------

  // The marketplace shell arrives with its first page of cards (nobody's: no badges) and
  // without htmx, so nothing runs before they are painted; then htmx, then the user's version.
  // A click or submit before htmx is there waits for it (a plain link would lose the token).
  let waitingClick = null;

  function loadHtmx() {
    document.addEventListener('click', (e) => {
      const el = !window.htmx && e.target instanceof Element && e.target.closest('[hx-get], [hx-post]');
      if (!el) return;
      e.preventDefault();
      e.stopImmediatePropagation();
      waitingClick = el;
    }, true);
    document.addEventListener('submit', (e) => { if (!window.htmx) e.preventDefault(); }, true);
    // htmx initialises at once only in a complete document (it would wait for a
    // DOMContentLoaded that has passed), so after the load event (icons), past the paint.
    const inject = () => requestAnimationFrame(() => setTimeout(() => {
      const script = document.createElement('script');
      script.src = ds.portalHtmx;
      script.onload = () => {
        // The clicked card's page is the user's own already; without a click, the marketplace.
        if (waitingClick && waitingClick.isConnected) waitingClick.click();
        else reload();
        booted(); // the request is under way now: 'busy' until it has settled
      };
      script.onerror = booted;
      document.head.append(script);
    }));
    if (document.readyState === 'complete') inject();
    else addEventListener('load', inject, { once: true });
  }

  // The host origin a session token was issued to, read from the token itself: the portal
  // signs it (itsdangerous: base64url JSON payload "o" = origin, timestamp, signature), and
  // every API call checks that signature, so a forged token only ever gets errors back. A
  // compressed payload (leading '.') or anything unreadable asks GET /session instead.
  // Resolves with the exact origin; rejects when there is none.
  function tokenPayload(t) {
    try {
      const b64 = t.split('.')[0].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))));
    } catch (err) {
      return {}; // not readable here: ask the server
    }
  }

  // With onTheme, a session with a theme of its own ("t", or a compressed payload that only
  // the server reads) asks GET /session for it too, and hands it to onTheme.
  async function tokenOrigin(t, ask, onTheme) {
    const payload = tokenPayload(t);
    let origin = payload.o;
    if (typeof origin !== 'string' || (onTheme && payload.t)) {
      const session = await ask('GET', '/session');
      origin = session.origin;
      if (onTheme) onTheme(session.theme);
    }
    try {
      return new URL(origin).origin;
    } catch (err) {
      throw new Error('The portal session has no valid host origin.');
    }
  }

  // A session's own theme ("t" in its token; GET /session gives it over PORTAL_THEME): its mode
  // forced on the page (a light host gets no dark slab), its checked stylesheet linked (a
  // served file: the CSP allows no inline style).
  function applyTheme(theme) {
    if (!theme) return;
    if (/^(light|dark|auto)$/.test(theme.mode)) document.documentElement.dataset.portalTheme = theme.mode;
    // The host's logo and name (checked by the server; text and an https image, never HTML).
    if ((theme.logo || theme.name) && !document.querySelector('.portal-brand')) {
      const brand = Object.assign(document.createElement('p'), { className: 'portal-brand' });
      if (theme.logo) {
        const img = Object.assign(document.createElement('img'), { className: 'portal-brand__logo', src: theme.logo, alt: theme.name || '' });
        img.height = 24;
        brand.append(img);
      }
      if (theme.name) {
        const name = Object.assign(document.createElement('span'), { className: 'portal-brand__name', textContent: theme.name });
        if (theme.logo) name.setAttribute('aria-hidden', 'true');
        brand.append(name);
      }
      document.body.prepend(brand);
    }
    const href = theme.stylesheet;
    if (href && sameOrigin(href) && !document.querySelector('link[href="' + CSS.escape(href) + '"]')) {
      const link = document.createElement('link');
      link.rel = 'stylesheet';
      link.href = href;
      document.head.append(link);
    }
  }

  // The token: in the fragment (#token=…), or, with #token=post (the SDK, which starts loading
  // this document before its session exists), in a 'portal:token' message from window.parent,
  // accepted only from the origin the token itself was issued to.
  function startShell() {
    const match = /[#&]token=([^&]*)/.exec(location.hash);
    // Out of the URL at once: history, a reload or a copied link must not carry the token.
    if (location.hash) history.replaceState(history.state, '', location.pathname + location.search);
    let fragmentToken = null;
    try {
      fragmentToken = match && decodeURIComponent(match[1]);
    } catch (err) { /* not decodable: no token */ }
    if (fragmentToken !== 'post') {
      withToken(fragmentToken);
      return;
    }
    const onToken = (e) => {
      const d = e.data;
      const t = d && d.payload; // the token itself
      if (e.source !== window.parent || !d || d.source !== SOURCE || d.version !== 1 || d.type !== 'portal:token' ||
          typeof t !== 'string') return;
      tokenOrigin(t, (method, path) => sessionRequest(t, path)).then((origin) => {
        if (origin !== e.origin || token) return;
        removeEventListener('message', onToken);
        withToken(t, origin);
      }, () => {});
    };
    addEventListener('message', onToken);
  }

  // GET <api><path> with a token that is not (yet) this frame's own.
  async function sessionRequest(t, path) {
    const res = await fetch(api + path, { headers: { Authorization: 'Bearer ' + t }, credentials: 'omit' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    return res.json();
  }

  function withToken(t, knownOrigin) {
    token = t;
    if (!token) {
      sessionExpired('invalid_token');
      booted();
      return;
    }
    // The content needs only the token, not the host origin: fetch both at once, so the
    // marketplace paints one round trip sooner.
    if (ds.portalHtmx && !window.htmx) {
      loadHtmx();
    } else {
      reload();
      booted();
    }
    // A session with a theme of its own costs one request, for its checked stylesheet and mode
    // (PORTAL_THEME alone is already in the page the server rendered).
    const payload = tokenPayload(token);
    const themed = payload.t || typeof payload.o !== 'string';
    (knownOrigin && !themed ? Promise.resolve(knownOrigin) : tokenOrigin(token, request, applyTheme)).then((origin) => {
      hostOrigin = origin;
      post('ready', { isReady: true });
      scheduleResize(true);
    }).catch((err) => {
      if (!expired && mainEl) {
        mainEl.replaceChildren(notice(err.message || t('not_loaded', 'The portal could not be loaded; reload the page.'),
          'portal-alert portal-alert--error'));
      }
    });
  }

  function sendConnectResult() {
    const el = document.getElementById('portal-connect-result');
    let data = null;
    try {
      data = JSON.parse(el.textContent);
    } catch (err) { /* no result block: nothing to send */ }
    let origin = null;
    try {
      origin = new URL(data.targetOrigin).origin;
    } catch (err) { /* not an exact origin: never fall back to a wildcard */ }
    if (window.opener && origin && origin === data.targetOrigin) {
      try {
        window.opener.postMessage(data.message, origin);
      } catch (err) { /* opener gone meanwhile; the opener also polls the attempt */ }
    }
    setTimeout(() => window.close(), 400);
  }

  // --- RPC for the host-page SDK (the hidden /embed/rpc frame) ------------------------------
  // portal.js keeps only what must run in the host page; its other methods are calls answered
  // here: {id, method, args, token, project} in a 'portal:call' from window.parent on the
  // session's host origin, {id, value | error, emit: [[event, payload]…]} back to that origin.

  const enc = encodeURIComponent;

  function rpcError(type, message, status, body) {
    const err = { type, message: message || type };
    if (status) err.status = status;
    if (body != null) err.body = body;
    return err;
  }

  function need(value, name) {
    if (!value || typeof value !== 'string') throw rpcError('invalid_argument', name + ' is required');
  }

  // Plain objects and arrays travel as JSON; strings and Blobs (the SDK turns FormData and
  // other bodies into a Blob with its type) as they are.
  function isJsonBody(value) {
    const proto = value && typeof value === 'object' && Object.getPrototypeOf(value);
    return Array.isArray(value) || proto === Object.prototype || proto === null;
  }

  // Resolves with the parsed JSON (or text, or null when empty) of a 2xx answer; rejects with
  // {type, message, status, body} otherwise.
  async function http(rpcToken, method, path, body, headerList) {
    const headers = new Headers(headerList || { Accept: 'application/json' });
    if (body != null && isJsonBody(body)) {
      body = JSON.stringify(body);
      if (!headers.has('Content-Type')) headers.set('Content-Type', 'application/json');
    }
    headers.set('Authorization', 'Bearer ' + rpcToken);
    let res;
    try {
      res = await fetch(api + path, { method, headers, body, credentials: 'omit' });
    } catch (err) {
      throw rpcError('network_error', err.message);
    }
    const text = await res.text();
    let data = text || null;
    try {
      if (/json/i.test(res.headers.get('Content-Type'))) data = JSON.parse(text);
    } catch (err) { /* not JSON after all: keep the text */ }
    if (!res.ok) {
      throw rpcError((data && data.error) || 'http_error', (data && data.message) || 'HTTP ' + res.status,
        res.status, data);
    }
    return data;
  }

  const settledAttempts = new Set();

  // Each method gets (call, ...args): call = {token, project, emit: [[event, payload]…]}.
  const methods = {
    async getUser(c) {
      try {
        return await http(c.token, 'GET', '/user');
      } catch (err) {
        if (err.status === 401 || err.status === 403) return { authenticated: false };
        throw err;
      }
    },
    event(c, name, payload) {
      need(name, 'name');
      if (!c.project) throw rpcError('not_authenticated', 'Call authenticate(projectId, userToken) first.');
      return http(c.token, 'POST', '/projects/' + enc(c.project) + '/sdk/events/trigger',
        { name, payload: payload == null ? {} : payload });
    },
    async getConnectedAccounts(c, app) {
      need(app, 'appName');
      return (await http(c.token, 'GET', '/connected-accounts?app=' + enc(app))).connected_accounts || [];
    },
    async isAppConnected(c, app) {
      return (await methods.getConnectedAccounts(c, app)).length > 0;
    },
    async disconnectApp(c, app, id) {
      need(app, 'appName');
      if (id == null || id === '') {
        const list = await methods.getConnectedAccounts(c, app);
        if (list.length !== 1) throw rpcError('invalid_argument', 'connectedAccountId is required');
        id = list[0].id;
      }
      c.emit.push(['app-disconnected', await http(c.token, 'DELETE', '/connected-accounts/' + enc(id))]);
    },
    getFunction(c, name) {
      need(name, 'functionName');
      return http(c.token, 'GET', '/functions/' + enc(name));
    },
    async invokeFunction(c, name, params, accountId) {
      need(name, 'functionName');
      const body = { params: params || {} };
      if (accountId) body.connectedAccountId = String(accountId);
      try {
        return await http(c.token, 'POST', '/functions/' + enc(name) + '/invoke', body);
      } catch (err) {
        // Not executed (invalid params, nothing connected) is a result in the seed, not a failure.
        if ((err.status === 400 || err.status === 404) && err.body && Array.isArray(err.body.error_details)) {
          return err.body;
        }
        throw err;
      }
    },
    // The app's flows, each with the user's choice: [{name, title, enabled, settings, …}].
    async getFlows(c, app) {
      need(app, 'appName');
      return (await http(c.token, 'GET', '/flows?app=' + enc(app))).flows || [];
    },
    // Turns a flow on or off and saves its settings ({enabled, settings, connectedAccountId?}).
    setFlow(c, app, flow, o) {
      need(app, 'appName');
      need(flow, 'flowName');
      if (!isJsonBody(o) || Array.isArray(o)) throw rpcError('invalid_argument', 'options must be a JSON object');
      return http(c.token, 'PUT', '/flows/' + enc(app) + '/' + enc(flow), o);
    },
    // Paragon's request(): the app's API through the credential-injecting proxy.
    async request(c, app, path, o) {
      need(app, 'app');
      o = o || {};
      let url = '/proxy/' + enc(app) + '/' + String(path == null ? '' : path).replace(/^\/+/, '');
      if (o.connectedAccountId) {
        url += (url.includes('?') ? '&' : '?') + 'connectedAccountId=' + enc(o.connectedAccountId);
      }
      try {
        return await http(c.token, String(o.method || 'GET').toUpperCase(), url, o.body, o.headers || []);
      } catch (err) {
        // The proxied API's own error codes are not the portal's: every non-2xx is an http_error.
        if (err.status) err.type = 'http_error';
        throw err;
      }
    },
    // With an account id: a ticket that re-authorizes that account (it keeps its id). o.scopes:
    // extra scopes from the app's optional_scopes (the server refuses others: invalid_scope).
    ticket(c, app, accountId, o) {
      need(app, 'appName');
      const body = { opener: 'host' };
      if (o && o.scopes != null) body.scopes = o.scopes;
      if (accountId != null) {
        need(accountId, 'connectedAccountId');
        return http(c.token, 'POST', '/connected-accounts/' + enc(accountId) + '/reconnect', body);
      }
      return http(c.token, 'POST', '/connect-tickets', { app, ...body });
    },
    // The connect attempt's outcome, polled by the SDK (the popup may lose window.opener to COOP
    // on the provider's pages), or the one the popup's last page posted to the SDK (posted: its
    // {status, attemptId, payload, error}, the server's outcome rendered into that portal page;
    // it only ever reaches the host page that opened the popup, which these events are for):
    // null while pending; the account id, with 'app-connected', once connected (exactly once
    // per attempt); rejects when it failed, or with final (the popup is closed) when it is
    // still pending.
    async attempt(c, attemptId, final, app, posted) {
      let r = posted && posted.attemptId === attemptId && posted.status !== 'pending' ? posted : null;
      try {
        r = r || await http(c.token, 'GET', '/connect-attempts/' + enc(attemptId));
      } catch (err) {
        // Transient trouble is retried by the next poll; a 4xx will not heal.
        if (final || (err.status >= 400 && err.status < 500 && err.status !== 429)) throw err;
        return null;
      }
      if (settledAttempts.has(attemptId)) return null;
      if (r.status === 'pending' && !final) return null;
      settledAttempts.add(attemptId);
      if (r.status === 'pending') throw rpcError('window_closed', 'Connect window closed');
      return settleAttempt(c, r, app);
    },
    // Redirect mode came back to the host page with portal_attempt=<attempt id> in its query
    // (and nothing else: the outcome is never read from the URL, which anyone can write). The
    // server answers for this user's own attempts only: 'app-connected' (or 'error') once it
    // confirms one; an unknown or another user's attempt reads as pending and emits nothing
    // (the result page moved on only after the attempt settled, so there is nothing to wait
    // for). Returns the query string without the parameter.
    async redirected(c, search) {
      const query = new URLSearchParams(search);
      const id = query.get('portal_attempt');
      query.delete('portal_attempt');
      const rest = query.toString();
      try {
        const r = id && await http(c.token, 'GET', '/connect-attempts/' + enc(id));
        if (r && r.status !== 'pending') settleAttempt(c, r, r.app);
      } catch (err) {
        c.emit.push(['error', { type: err.type, message: err.message }]);
      }
      return rest ? '?' + rest : '';
    },
  };

  // A settled attempt's answer from GET /connect-attempts/<id>: 'app-connected' and the
  // account id when connected; rejects with the server's error code when it failed.
  function settleAttempt(c, r, app) {
    if (r.status !== 'connected') {
      const e = r.error || {};
      throw rpcError(e.type || 'connect_failed', e.message);
    }
    const p = r.payload || {};
    const payload = {
      app: p.app || { name: app },
      connectedAccountId: p.connectedAccountId != null ? p.connectedAccountId : r.connectedAccountId,
      connected_accounts: p.connected_accounts || [],
    };
    c.emit.push(['app-connected', payload]);
    return payload.connectedAccountId;
  }

  async function answer(d, origin) {
    const c = { token: d.token, project: d.project, emit: [] };
    const reply = { id: d.id, emit: c.emit };
    try {
      if (!Object.hasOwn(methods, d.method)) throw rpcError('invalid_argument', 'Unknown method');
      reply.value = await methods[d.method](c, ...(Array.isArray(d.args) ? d.args : []));
    } catch (err) {
      reply.error = err && err.type ? err : rpcError('internal_error', String(err && err.message));
    }
    window.parent.postMessage({ source: SOURCE, version: 1, type: 'portal:return', payload: reply }, origin);
  }

  // Each token's host origin (tokenOrigin), as a promise of the origin or null.
  const tokenOrigins = new Map();

  function startRpc() {
    if (!framed) return;
    addEventListener('message', (e) => {
      const d = e.data;
      const call = d && d.payload;
      if (e.source !== window.parent || !d || d.source !== SOURCE || d.version !== 1 || d.type !== 'portal:call' ||
          !call || typeof call.token !== 'string') return;
      if (!tokenOrigins.has(call.token)) {
        tokenOrigins.set(call.token, tokenOrigin(call.token, (method, path) => http(call.token, method, path))
          .catch(() => null));
      }
      // Only calls from the origin the session was issued to; the answer goes only there.
      tokenOrigins.get(call.token).then((origin) => {
        if (origin && origin === e.origin) answer(call, origin);
      });
    });
  }

  updateState();
  if (mainEl) {
    announcer = Object.assign(document.createElement('p'), { id: 'portal-announce', className: 'portal-visually-hidden' });
    announcer.setAttribute('role', 'status');
    announcer.setAttribute('aria-live', 'polite');
    mainEl.after(announcer);
  }
  if (page === 'connect-done') {
    sendConnectResult();
  } else if (page === 'rpc') {
    startRpc();
  } else if (mounted) {
    if (page === 'shell') post('ready', { isReady: true });
    showStoredFailure();
  } else if (page === 'shell') {
    startShell();
  }
})();
