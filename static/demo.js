// The demo host page's own script (not part of the SDK): wires buttons to portal.js and logs
// every event, including the plain-iframe embed's messages, which it checks like portal.js does.
(function () {
  'use strict';
  const body = document.body;
  const log = document.getElementById('event-log');
  const status = document.getElementById('sdk-status');
  const portalOrigin = new URL(body.dataset.portalOrigin).origin;
  const events = [];
  // Exposed for the end-to-end tests, which read what the host page received.
  Object.defineProperty(window, 'demoEvents', { value: events });

  function record(via, type, payload) {
    events.push({ via: via, type: type, payload: payload });
    const li = document.createElement('li');
    const head = document.createElement('strong');
    head.textContent = type + ' ';
    const src = document.createElement('span');
    src.className = 'demo-log__via';
    src.textContent = via;
    const pre = document.createElement('pre');
    pre.textContent = JSON.stringify(payload, null, 2);
    li.append(head, src, pre);
    log.prepend(li);
  }

  const portal = new ConnectPortal({
    appKey: body.dataset.appKey,
    userId: body.dataset.userId,
    hash: body.dataset.hash,
    baseUrl: body.dataset.baseUrl,
  });
  ['ready', 'app-connected', 'app-disconnected', 'modal-closed', 'error'].forEach(function (type) {
    portal.eventEmitter.on(type, function (payload) { record('sdk', type, payload); });
  });
  portal.eventEmitter.on('ready', function () {
    status.textContent = 'SDK ready for ' + body.dataset.userId + '.';
    portal.showApps(ConnectPortal.RenderModes.INLINE, 'inline-portal', ConnectPortal.Layouts.NARROW)
      .catch(function (err) { status.textContent = 'Inline failed: ' + err.message; });
  });
  portal.eventEmitter.on('error', function (e) { status.textContent = 'Error: ' + (e.message || e.type); });

  document.getElementById('open-modal').addEventListener('click', function () {
    portal.showApps(ConnectPortal.RenderModes.MODAL).catch(function (err) { status.textContent = err.message; });
  });
  document.getElementById('open-modal-narrow').addEventListener('click', function () {
    portal.showApps(ConnectPortal.RenderModes.MODAL, null, ConnectPortal.Layouts.NARROW)
      .catch(function (err) { status.textContent = err.message; });
  });
  document.getElementById('connect-direct').addEventListener('click', function () {
    portal.connectApp('sandbox').then(function (id) {
      status.textContent = 'connectApp resolved with ' + id;
    }, function (err) { status.textContent = 'connectApp: ' + (err.type || '') + ' ' + err.message; });
  });

  // 4 · Paragon style: no appKey/hash; a JWT the host backend signed authenticates the user.
  const paragon = new ConnectPortal({ baseUrl: body.dataset.baseUrl });
  const paragonStatus = document.getElementById('paragon-status');
  const output = document.getElementById('paragon-output');
  const show = function (label, value) {
    output.textContent = label + '\n' + JSON.stringify(value, null, 2);
  };
  const paragonFailed = function (err) {
    paragonStatus.textContent = (err.type ? err.type + ': ' : '') + err.message;
  };
  ['ready', 'app-connected', 'app-disconnected', 'error'].forEach(function (type) {
    paragon.eventEmitter.on(type, function (payload) { record('paragon', type, payload); });
  });
  if (body.dataset.userToken) {
    paragon.authenticate(body.dataset.appKey, body.dataset.userToken).then(function () {
      paragonStatus.textContent = 'authenticate() resolved for ' + body.dataset.userId + '.';
    }, paragonFailed);
  } else {
    paragonStatus.textContent = 'The host app has no JWT signing key, so there is no user token.';
  }
  document.getElementById('paragon-get-user').addEventListener('click', function () {
    paragon.getUser().then(function (user) { show('getUser() →', user); }, paragonFailed);
  });
  document.getElementById('paragon-connect').addEventListener('click', function () {
    paragon.connect('sandbox').catch(paragonFailed);
  });
  // The runs of an event finish in the worker: the host backend reads the outcome with its
  // secret (/demo/events/<id>), polled here until no run is queued or running.
  function followRuns(receipt, polls) {
    const pending = receipt.runs.some(function (r) { return r.status === 'queued' || r.status === 'running'; });
    show('event() → 202 Accepted' + (pending ? ' (runs in progress…)' : ''), receipt);
    if (!pending || polls <= 0) return;
    setTimeout(function () {
      fetch('/demo/events/' + encodeURIComponent(receipt.id) + '?user=' + encodeURIComponent(body.dataset.userId))
        .then(function (res) { return res.json(); })
        .then(function (event) { followRuns(event, polls - 1); }, paragonFailed);
    }, 500);
  }
  document.getElementById('paragon-event').addEventListener('click', function () {
    paragon.event('Contact Created', { name: 'Brandon', email: 'b@useparagon.com' })
      .then(function (receipt) { followRuns(receipt, 40); }, paragonFailed);
  });

  // 5 · Connection lifecycle: a hosted connect link, the accounts (reconnect each, an
  // unhealthy one shows its reason), scopes per connect, and the sandbox's fault switch.
  const user = encodeURIComponent(body.dataset.userId);
  const lifeStatus = document.getElementById('lifecycle-status');
  const accountsList = document.getElementById('lifecycle-accounts');
  const lifeFailed = function (err) {
    lifeStatus.textContent = (err.type ? err.type + ': ' : '') + err.message;
  };
  const postJson = function (url, data) {
    return fetch(url, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(data),
    }).then(function (res) {
      return res.json().then(function (json) {
        if (!res.ok) throw { type: json.error, message: json.message || res.statusText };
        return json;
      });
    });
  };
  function accountItem(a) {
    const li = document.createElement('li');
    li.className = 'demo-account';
    li.dataset.accountId = a.id;
    li.dataset.status = a.status;
    const who = document.createElement('span');
    who.className = 'demo-account__who';
    const name = document.createElement('strong');
    name.textContent = a.app + ' · ' + (a.label || a.external_id);
    const badge = document.createElement('span');
    badge.className = 'demo-badge demo-badge--' + a.status;
    badge.textContent = a.status;
    const meta = document.createElement('span');
    meta.className = 'demo-account__meta';
    meta.textContent = 'scopes: ' + (a.scopes.length ? a.scopes.join(' ') : '(none)');
    who.append(name, badge, meta);
    if (a.reason) {
      const reason = document.createElement('span');
      reason.className = 'demo-account__reason';
      reason.textContent = a.reason;
      who.append(reason);
    }
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'demo-button demo-button--secondary';
    button.textContent = 'Reconnect';
    button.addEventListener('click', function () {
      portal.reconnectApp(a.app, a.id).then(function (id) {
        lifeStatus.textContent = 'reconnectApp resolved with ' + id + ' (same id).';
        loadAccounts();
      }, lifeFailed);
    });
    li.append(who, button);
    return li;
  }
  function loadAccounts() {
    return fetch('/demo/accounts?user=' + user).then(function (res) { return res.json(); })
      .then(function (data) {
        accountsList.replaceChildren();
        (data.accounts || []).forEach(function (a) { accountsList.append(accountItem(a)); });
        if (!accountsList.children.length) {
          const empty = document.createElement('li');
          empty.className = 'demo-log__empty';
          empty.textContent = 'No account yet: connect one above.';
          accountsList.append(empty);
        }
      }, lifeFailed);
  }
  ['app-connected', 'app-disconnected'].forEach(function (type) {
    portal.eventEmitter.on(type, loadAccounts);
  });
  loadAccounts();
  document.getElementById('make-link').addEventListener('click', function () {
    const app = document.getElementById('link-app').value;
    postJson('/demo/connect-link', { user: body.dataset.userId, app: app || null }).then(function (link) {
      const out = document.getElementById('link-output');
      const a = document.createElement('a');
      a.href = link.url;
      a.id = 'connect-link-url';
      a.textContent = link.url;
      out.replaceChildren('Send this link (single use, until ' + link.expires_at + '): ', a);
    }, lifeFailed);
  });
  document.getElementById('connect-scopes').addEventListener('click', function () {
    portal.connectApp('sandbox', { scopes: ['contacts.delete'] }).then(function (id) {
      lifeStatus.textContent = 'connectApp with scopes resolved with ' + id;
      loadAccounts();
    }, lifeFailed);
  });
  [['fault-on', true], ['fault-off', false]].forEach(function (pair) {
    document.getElementById(pair[0]).addEventListener('click', function () {
      postJson('/demo/sandbox-fault', { on: pair[1] }).then(function (r) {
        lifeStatus.textContent = r.fault
          ? 'API keys refused; health checks run: ' + r.checked + '.'
          : 'API keys work again: reconnect the account to recover it.';
        return loadAccounts();
      }, lifeFailed);
    });
  });

  // Plain iframe embed: no SDK, so the host checks origin and source itself.
  const frame = document.getElementById('embed-frame');
  window.addEventListener('message', function (event) {
    if (!frame || event.source !== frame.contentWindow || event.origin !== portalOrigin) return;
    const data = event.data;
    if (!data || data.source !== 'connect-portal' || data.version !== 1) return;
    if (data.type === 'portal:resize') {
      frame.style.height = Math.max(320, Math.min(900, data.payload.height)) + 'px';
      return;
    }
    if (data.type.indexOf('portal:') === 0) return;
    record('iframe', data.type, data.payload);
  });
})();
