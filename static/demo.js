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
