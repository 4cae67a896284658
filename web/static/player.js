// Plays a session's recordings side by side, in sync, from one Play/Pause
// button: each file starts at its participant's offset (data-offset, in
// seconds) from the session's first recording. A seek bar, the length and
// a volume control go with it, and each time on the lesson's timeline
// moves every video to that moment.
(function () {
  'use strict';
  const videos = Array.from(document.querySelectorAll('#player video'));
  const btn = document.getElementById('play-all');
  const clock = document.getElementById('player-time');
  if (!btn || !videos.length) return;
  let playing = false;
  let t0 = 0; // session time when play was last pressed
  let started = 0; // performance.now() then
  const offset = (v) => parseFloat(v.dataset.offset) || 0;
  const length = (v) => (isFinite(v.duration) ? v.duration : Infinity);
  const fmt = (s) => Math.floor(s / 60) + ':' + String(Math.floor(s % 60)).padStart(2, '0');
  const sessionTime = () => (playing ? t0 + (performance.now() - started) / 1000 : t0);
  // The session ends when the last file does.
  const controls = document.querySelector('.player-controls');
  const seekBar = document.getElementById('player-seek');
  const volume = document.getElementById('player-volume');
  const duration = document.getElementById('player-duration');
  const known = parseFloat(controls && controls.dataset.length) || 0;
  const end = () => {
    const e = Math.max(known, ...videos.map((v) => offset(v) + (isFinite(v.duration) ? v.duration : 0)));
    return e > 0 ? e : Infinity;
  };
  function showLength() {
    const e = end();
    if (!isFinite(e)) return;
    if (duration) duration.textContent = fmt(e);
    if (seekBar) seekBar.max = String(e);
  }
  videos.forEach((v) => v.addEventListener('loadedmetadata', showLength));
  showLength();

  function pause(rewind) {
    t0 = rewind ? 0 : sessionTime();
    playing = false;
    videos.forEach((v) => v.pause());
    btn.textContent = 'Play';
  }

  function sync() {
    let t = sessionTime();
    if (playing && t >= end()) {
      pause(true);
      t = 0;
    }
    for (const v of videos) {
      const local = t - offset(v);
      if (local < 0 || local >= length(v)) {
        if (!v.paused) v.pause();
        continue;
      }
      if (Math.abs(v.currentTime - local) > 0.5) v.currentTime = local;
      if (playing && v.paused) v.play().catch(() => {});
    }
    clock.textContent = fmt(t);
    if (seekBar && document.activeElement !== seekBar) seekBar.value = String(t);
  }

  // seek moves every video to session time t (playing or not).
  function seek(t) {
    t0 = Math.max(0, Math.min(t, isFinite(end()) ? end() : t));
    started = performance.now();
    for (const v of videos) {
      const local = t0 - offset(v);
      if (local >= 0 && local < length(v)) v.currentTime = local;
    }
    sync();
  }
  if (seekBar) seekBar.addEventListener('input', () => seek(parseFloat(seekBar.value) || 0));
  if (volume) volume.addEventListener('input', () => videos.forEach((v) => { v.volume = parseFloat(volume.value); }));
  document.querySelectorAll('#timeline .tl-jump').forEach((b) => b.addEventListener('click', () => seek(parseFloat(b.dataset.t) || 0)));

  // A file that stops loading (most often: the sign-in has grown too old
  // to go on playing) stops the player with a sentence saying what to do.
  const notice = document.getElementById('player-notice');
  videos.forEach((v) => v.addEventListener('error', () => {
    pause(false);
    if (notice) {
      notice.hidden = false;
    }
  }));

  btn.addEventListener('click', () => {
    if (playing) {
      pause(false);
    } else {
      started = performance.now();
      playing = true;
      btn.textContent = 'Pause';
    }
    sync();
  });
  setInterval(() => { if (playing) sync(); }, 250);
})();
