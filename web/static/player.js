// Plays a session's recordings side by side, in sync: each file starts at
// its participant's offset from the session's start.
(function () {
  'use strict';
  const videos = Array.from(document.querySelectorAll('#player video'));
  const btn = document.getElementById('play-all');
  const clock = document.getElementById('player-time');
  if (!btn || !videos.length) return;
  let playing = false;
  let t0 = 0; // session time when play was pressed
  let started = 0; // performance.now() then
  const offset = (v) => parseFloat(v.dataset.offset) || 0;
  const fmt = (s) => Math.floor(s / 60) + ':' + String(Math.floor(s % 60)).padStart(2, '0');
  function sessionTime() { return playing ? t0 + (performance.now() - started) / 1000 : t0; }
  function sync() {
    const t = sessionTime();
    for (const v of videos) {
      const local = t - offset(v);
      if (local < 0) { if (!v.paused) v.pause(); v.currentTime = 0; continue; }
      if (Math.abs(v.currentTime - local) > 0.5 && local < (v.duration || Infinity)) v.currentTime = local;
      if (playing && v.paused && local < (v.duration || Infinity)) v.play().catch(() => {});
    }
    clock.textContent = fmt(t);
  }
  btn.addEventListener('click', () => {
    if (playing) {
      t0 = sessionTime(); playing = false; videos.forEach((v) => v.pause()); btn.textContent = 'Play';
    } else {
      started = performance.now(); playing = true; btn.textContent = 'Pause'; sync();
    }
  });
  setInterval(() => { if (playing) sync(); }, 500);
})();
