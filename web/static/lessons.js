// A pupil's list of lessons keeps itself up to date: when the teacher opens
// a lesson's room, its Join button appears without a reload (and its words
// change back if the lesson ends). It asks the server every 10 seconds
// while the page is visible.
(function () {
  'use strict';
  const rows = () => Array.from(document.querySelectorAll('[data-session]'));
  if (!rows().length) return;
  function render(cell, s) {
    const link = cell.querySelector('a.button');
    if (s.can_open && s.room_url) {
      if (link) return;
      const a = document.createElement('a');
      a.className = 'button';
      a.href = '/rooms/' + encodeURIComponent(s.id);
      a.textContent = 'Join the lesson';
      cell.replaceChildren(a);
      const st = cell.closest('[data-session]').querySelector('.state');
      if (st) st.textContent = 'open now';
      return;
    }
    if (!link && cell.textContent.trim() === (s.open_message || '').trim()) return;
    const hint = document.createElement('span');
    hint.className = 'hint';
    hint.textContent = s.open_message || '';
    cell.replaceChildren(hint);
  }
  async function refresh() {
    if (document.hidden) return;
    let data;
    try {
      const r = await fetch('/api/sessions', { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
      if (!r.ok) return;
      data = await r.json();
    } catch (e) {
      return; // offline for a moment: the next try will do
    }
    const byID = new Map((data.sessions || []).map((s) => [s.id, s]));
    for (const row of rows()) {
      const s = byID.get(row.dataset.session);
      const cell = row.querySelector('.room-cell');
      if (s && cell) render(cell, s);
    }
  }
  setInterval(refresh, 10000);
  document.addEventListener('visibilitychange', refresh);
})();
