// The demo host page's webhook list: the host backend stores every verified webhook the
// portal sends it; this polls that list so the page shows deliveries as the worker makes them.
(function () {
  'use strict';
  const list = document.getElementById('webhook-log');
  if (!list) return;
  let shown = '';

  function render(hooks) {
    const key = hooks.map(function (h) { return h.id; }).join(',');
    if (key === shown || hooks.length === 0) return;
    shown = key;
    list.replaceChildren.apply(list, hooks.map(function (hook) {
      const li = document.createElement('li');
      const head = document.createElement('strong');
      head.textContent = hook.type + ' ';
      const id = document.createElement('span');
      id.className = 'demo-log__via';
      id.textContent = hook.id;
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify(hook.data, null, 2);
      li.append(head, id, pre);
      return li;
    }));
  }

  function poll() {
    fetch(list.dataset.webhooksUrl, { headers: { Accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : { webhooks: [] }; })
      .then(function (body) { render(body.webhooks || []); })
      .catch(function () { /* the demo host is restarting: try again on the next tick */ })
      .finally(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
