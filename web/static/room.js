// chaperone live room: WebSocket signalling, two peer connections (up = my media to the
// gateway, down = everyone else's media from the gateway), lobby controls for staff.
// Plain browser JS, no build step. Protocol: see DESIGN.md "Signalling".
'use strict';
(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const room = $('#room');
  if (!room) return;

  const isStaff = room.dataset.staff === 'true';
  const tiles = $('#tiles');
  const mainView = $('#main-view');
  const strip = $('#strip');
  const selfTile = $('#tile-self');
  const lobbyList = $('#lobby-list');

  let ws = null;
  let me = { id: '', name: room.dataset.name || '', role: isStaff ? 'staff' : 'pupil' };
  let iceServers = [];
  let local = null;          // my MediaStream (null until admitted, or if no devices)
  let joined = false;        // media set up after admission
  let terminal = false;      // a denied/removed/ended/left/lost notice is showing
  let final = false;         // removed/ended/left: nothing more will happen
  let locked = false;
  let roster = new Map();    // id -> {id, name, role, muted, screen, hand}
  let rosterMsg = { hands: [], spotlight: null, pupil_media: { audio: true, video: true } };
  let myState = { muted: {}, can_unmute: {}, screen: false, hand: false, watch_only: false };
  let screen = null;         // my screen share's MediaStream while I share
  let speaker = '';          // the participant heard most recently (for the main view)
  const pcs = { up: null, down: null };
  const pending = { up: [], down: [] };  // ICE candidates waiting for a remote description
  const chains = { up: Promise.resolve(), down: Promise.resolve() };
  const streams = new Map(); // stream id (participant id, or id + '-screen') -> remote MediaStream
  const hook = window.chaperoneRoom = { state: null, roster: [], lobby: [], you: null, pcs };
  let ackPending = false;    // "I understand" pressed: focus moves on when the notice goes
  // pendingFocus is where the keyboard was when staff pressed a control that
  // the server's answer removes or rebuilds (the button is disabled meanwhile,
  // which drops focus): {area: 'lobby'|'people', id, cls, index}.
  let pendingFocus = null;
  function noteFocus(area, b, id, cls) {
    if (!b || document.activeElement !== b) return; // a pointer user: nothing to keep
    const li = b.closest('li[data-participant]');
    pendingFocus = { area, id, cls, index: li && li.parentElement ? Array.from(li.parentElement.children).indexOf(li) : 0 };
  }

  // ---------- small helpers ----------
  function el(tag, props = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('data-') || k.startsWith('aria-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) if (c) e.append(c);
    return e;
  }
  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }
  function show(node, on) { if (node) node.hidden = !on; }

  let messageTimer = 0;
  function flash(text) { // brief, non-fatal message under the banner
    const m = $('#room-message');
    m.textContent = text;
    show(m, true);
    clearTimeout(messageTimer);
    messageTimer = setTimeout(() => show(m, false), 8000);
  }
  function setBanner(text) {
    const b = $('#banner');
    if (text && b.textContent !== text) b.textContent = text;
  }

  // ---------- tiles ----------
  // A tile per remote stream: a participant's camera (key = their id) or their
  // screen share (key = id + '-screen'). One tile at a time is the main view;
  // the others are in the strip. Names are always on the tiles.
  const SCREEN = '-screen';
  const ownerOf = (key) => (key.endsWith(SCREEN) ? key.slice(0, -SCREEN.length) : key);
  function nameOf(id) {
    if (id === me.id) return me.name || 'You';
    const p = roster.get(id);
    return p ? p.name : 'Someone';
  }
  function captionFor(key) {
    const id = ownerOf(key);
    const own = id === me.id;
    if (key.endsWith(SCREEN)) return own ? 'Your screen (everyone sees it)' : nameOf(id) + ' — screen';
    if (own) return `You (${me.name})`;
    const p = roster.get(id);
    return nameOf(id) + (p && p.reconnecting ? ' — reconnecting…' : '');
  }
  function tileFor(key, create = true) {
    let t = key === me.id ? selfTile : tiles.querySelector(`.tile[data-key="${CSS.escape(key)}"]`);
    if (!t && create) {
      const video = el('video', { autoplay: true, playsInline: true });
      video.setAttribute('playsinline', '');
      if (ownerOf(key) === me.id) video.muted = true; // my own screen: no echo
      const screenTile = key.endsWith(SCREEN);
      t = el('figure', { class: 'tile no-video' + (screenTile ? ' screen' : ''), 'data-participant': ownerOf(key), 'data-key': key }, video, el('figcaption'));
      if (screenTile) t.dataset.screen = 'true';
      strip.append(t);
    }
    if (t && t !== selfTile) {
      const cap = $('figcaption', t);
      const name = captionFor(key);
      if (cap.textContent !== name) cap.textContent = name;
      if (key === ownerOf(key) + SCREEN && ownerOf(key) === me.id) { if (screen) attach(t, screen); }
      else if (streams.has(key)) attach(t, streams.get(key));
    }
    return t;
  }
  function hasLiveVideo(stream) {
    return !!stream && stream.getVideoTracks().some((tr) => tr.readyState === 'live' && !tr.muted && tr.enabled);
  }
  function attach(tile, stream) {
    const video = $('video', tile);
    if (video.srcObject !== stream) {
      video.srcObject = stream;
      play(video);
    }
    tile.classList.toggle('no-video', !hasLiveVideo(stream));
  }
  function detach(tile) {
    const video = $('video', tile);
    video.srcObject = null;
    tile.classList.add('no-video');
  }
  function dropTile(t) { if (t && t !== selfTile) { detach(t); t.remove(); } }
  function play(video) {
    const p = video.play();
    if (p && p.catch) p.catch(() => show($('#play-all'), true)); // autoplay blocked: ask for a tap
  }
  $('#play-all').addEventListener('click', () => {
    tiles.querySelectorAll('video').forEach((v) => { if (v.srcObject) v.play().catch(() => {}); });
    show($('#play-all'), false);
  });

  // The main view: what staff spotlighted; else a shared screen; else who
  // spoke last; else the first member of staff; else the first person here.
  function mainKey() {
    const sp = rosterMsg.spotlight;
    if (sp && sp.id) {
      const key = sp.screen ? sp.id + SCREEN : sp.id;
      if (tileFor(key, false)) return key;
    }
    const shared = [...tiles.querySelectorAll('.tile.screen')].map((t) => t.dataset.key);
    const others = shared.filter((k) => ownerOf(k) !== me.id);
    if (others.length) return others[0];
    if (shared.length) return shared[0];
    if (speaker && speaker !== me.id && roster.has(speaker)) return speaker;
    const list = [...roster.values()].filter((p) => p.id !== me.id);
    const staff = list.find((p) => p.role === 'staff');
    if (staff) return staff.id;
    return list.length ? list[0].id : '';
  }
  function layout() {
    const key = mainKey();
    const want = key ? tileFor(key, false) : null;
    const cur = mainView.firstElementChild;
    if (cur !== want) {
      if (cur) { cur.classList.remove('main'); strip.prepend(cur); if (cur === selfTile) strip.prepend(selfTile); }
      if (want) { want.classList.add('main'); mainView.append(want); }
    }
    tiles.classList.toggle('has-main', !!want);
    const sp = rosterMsg.spotlight;
    tiles.querySelectorAll('.tile').forEach((t) => {
      const k = t === selfTile ? me.id : t.dataset.key;
      t.classList.toggle('spotlit', !!sp && (sp.screen ? sp.id + SCREEN : sp.id) === k);
    });
    if (selfTile.parentNode === strip && strip.firstElementChild !== selfTile) strip.prepend(selfTile);
  }

  // A remote stream arrived on the DOWN connection; its id is the publisher's
  // participant id (camera and microphone) or that id + '-screen'.
  function onTrack(e) {
    const stream = e.streams[0];
    if (!stream) return;
    const key = stream.id;
    const check = () => streamChanged(key, stream);
    if (streams.get(key) !== stream) {
      streams.set(key, stream);
      stream.addEventListener('removetrack', check);
      stream.addEventListener('addtrack', check);
    }
    e.track.addEventListener('ended', check);
    e.track.addEventListener('mute', check);
    e.track.addEventListener('unmute', check);
    if (ownerOf(key) !== me.id) tileFor(key);
    layout();
    if (key.endsWith(SCREEN)) renderPeople();
  }
  function streamChanged(key, stream) {
    if (streams.get(key) !== stream) return;
    const t = tileFor(key, false);
    if (!stream.getTracks().some((tr) => tr.readyState === 'live')) {
      streams.delete(key);
      if (t) { detach(t); if (key.endsWith(SCREEN) || !roster.has(key)) dropTile(t); }
      layout();
      if (key.endsWith(SCREEN)) renderPeople();
    } else if (t) {
      attach(t, stream);
    }
  }
  // Who is speaking: the loudest incoming microphone, checked every second.
  setInterval(() => {
    const pc = pcs.down;
    if (!pc || !pc.getReceivers) return;
    let best = 0, who = '';
    for (const r of pc.getReceivers()) {
      if (!r.track || r.track.kind !== 'audio' || !r.getSynchronizationSources) continue;
      const id = (r.track.id || '').split('-')[0];
      for (const s of r.getSynchronizationSources()) {
        if (s.audioLevel > best && Date.now() - s.timestamp < 1500) { best = s.audioLevel; who = id; }
      }
    }
    if (best > 0.05 && who && who !== speaker && roster.has(who)) { speaker = who; layout(); }
  }, 1000);

  // ---------- roster and people ----------
  function onRoster(m) {
    const list = m.participants || [];
    hook.roster = list;
    rosterMsg = { hands: m.hands || [], spotlight: m.spotlight || null, pupil_media: m.pupil_media || { audio: true, video: true } };
    hook.spotlight = rosterMsg.spotlight;
    hook.hands = rosterMsg.hands;
    if (isStaff) { // someone who was reconnecting and is gone: tell staff they left
      for (const [id, p] of roster) if (p.reconnecting && !list.some((q) => q.id === id)) flash(p.name + ' has left the lesson.');
    }
    roster = new Map(list.map((p) => [p.id, p]));
    for (const p of list) if (p.id !== me.id) tileFor(p.id);
    tiles.querySelectorAll('.tile[data-key]').forEach((t) => {
      const key = t.dataset.key;
      if (!roster.has(ownerOf(key))) { dropTile(t); streams.delete(key); }
      else tileFor(key, false); // names may have changed
    });
    layout();
    renderPeople();
    renderHands();
    renderClassTools();
    announceHands();
  }
  function renderPeople() {
    const list = hook.roster || [];
    const people = $('#people');
    // The list is rebuilt on every roster message: what has focus, and an
    // open "remove" form with what was typed in it, are kept across it.
    const active = document.activeElement;
    const activeLi = active && people.contains(active) ? active.closest('li[data-participant]') : null;
    let focusWas = activeLi ? { id: activeLi.dataset.participant, cls: active.classList[0] || '', index: Array.from(people.children).indexOf(activeLi) } : null;
    if (!focusWas && pendingFocus && pendingFocus.area === 'people') focusWas = pendingFocus;
    pendingFocus = focusWas === pendingFocus ? null : pendingFocus;
    const openForms = new Map();
    people.querySelectorAll('li[data-participant] form.remove-form:not([hidden])').forEach((f) => {
      openForms.set(f.closest('li').dataset.participant, $('.remove-reason', f).value);
    });
    people.replaceChildren(...list.map((p) => {
      const you = p.id === me.id;
      const li = el('li', { 'data-participant': p.id },
        el('span', { class: 'name', text: p.name + (you ? ' (you)' : '') }),
        el('span', { class: 'role ' + p.role, text: p.role === 'staff' ? 'Staff' : 'Pupil' }));
      if (p.reconnecting) li.append(el('span', { class: 'reconnecting', text: 'Reconnecting…' }));
      if (p.hand) li.append(el('span', { class: 'hand-up', text: '✋ Hand up' }));
      const m = p.muted || {};
      if (m.audio || m.video) li.append(el('span', { class: 'muted-note', text: [m.audio ? 'Muted' : '', m.video ? 'Camera off' : ''].filter(Boolean).join(', ') }));
      if (p.no_video_browser) li.append(el('span', { class: 'no-video-note warning', text: 'Browser cannot join video' }));
      if (isStaff) li.append(staffControls(p));
      return li;
    }));
    for (const [id, value] of openForms) {
      const li = people.querySelector(`li[data-participant="${CSS.escape(id)}"]`);
      const f = li && $('form.remove-form', li);
      if (f) { show(f, true); $('.remove-reason', f).value = value; }
    }
    if (focusWas) {
      const li = people.querySelector(`li[data-participant="${CSS.escape(focusWas.id)}"]`);
      let target = li && focusWas.cls ? li.querySelector('.' + CSS.escape(focusWas.cls)) : null;
      if (!li) { // they left or were removed: the next person's first control, or the heading
        const next = people.children[focusWas.index] || people.children[focusWas.index - 1];
        target = next ? next.querySelector('button') : null;
        target = target || $('#people-heading');
      }
      if (target && !target.disabled) target.focus();
      else if (target && li) li.querySelector('button:not(:disabled)')?.focus();
    }
  }
  function renderHands() {
    const ol = $('#hands-list');
    if (!ol) {
      const b = $('#raise-hand');
      if (b) {
        b.setAttribute('aria-pressed', String(!!myState.hand));
        b.textContent = myState.hand ? 'Lower hand' : 'Raise hand';
      }
      return;
    }
    ol.replaceChildren(...rosterMsg.hands.filter((id) => roster.has(id)).map((id) => {
      const name = nameOf(id);
      const speak = el('button', { type: 'button', class: 'let-speak', text: 'Let speak', 'aria-label': 'Let ' + name + ' speak' });
      speak.addEventListener('click', () => {
        speak.disabled = true;
        send({ type: 'let_speak', id });
        flash(name + ' is told they can talk now. Their microphone comes on when they press “Unmute microphone”.');
      });
      const lower = el('button', { type: 'button', class: 'lower-hand secondary', text: 'Lower', 'aria-label': 'Lower the hand of ' + name });
      lower.addEventListener('click', () => { lower.disabled = true; send({ type: 'lower_hand', id }); });
      return el('li', { 'data-participant': id }, el('span', { class: 'name', text: name }), el('div', { class: 'row' }, speak, lower));
    }));
    show($('#hands-empty'), ol.children.length === 0);
    $('#hands').classList.toggle('has-hands', ol.children.length > 0);
  }
  function renderClassTools() {
    const pm = rosterMsg.pupil_media;
    const set = (b, on, what) => {
      if (!b) return;
      b.setAttribute('aria-pressed', String(!on));
      b.textContent = what + (on ? ': on' : ': off');
      b.disabled = false;
    };
    set($('#pupils-unmute'), pm.audio, 'Pupils may unmute themselves');
    set($('#pupils-camera'), pm.video, 'Pupils may turn cameras on');
  }

  // ---------- staff controls on a participant ----------
  function staffControls(p) {
    const box = el('div', { class: 'controls-for' });
    const row = el('div', { class: 'row' });
    box.append(row);
    const button = (cls, text, label, msg, extra = '') => {
      const b = el('button', { type: 'button', class: cls + (extra ? ' ' + extra : ''), text, 'aria-label': label });
      b.addEventListener('click', () => { noteFocus('people', b, p.id, cls); b.disabled = true; send(msg); });
      row.append(b);
      return b;
    };
    const sp = rosterMsg.spotlight;
    const lit = (screenToo) => !!sp && sp.id === p.id && !!sp.screen === screenToo;
    if (p.id !== me.id && p.role === 'pupil') {
      const muted = p.muted || {};
      button('mute-audio', muted.audio ? 'Allow microphone' : 'Mute microphone', (muted.audio ? 'Allow microphone of ' : 'Mute microphone of ') + p.name,
        { type: muted.audio ? 'unmute' : 'mute', id: p.id, kind: 'audio' }, 'secondary');
      button('mute-video', muted.video ? 'Allow camera' : 'Stop camera', (muted.video ? 'Allow camera of ' : 'Stop camera of ') + p.name,
        { type: muted.video ? 'unmute' : 'mute', id: p.id, kind: 'video' }, 'secondary');
      button('screen-grant', p.screen ? 'Stop their screen sharing' : 'Allow screen sharing', (p.screen ? 'Stop screen sharing of ' : 'Allow screen sharing for ') + p.name,
        { type: 'screen_grant', id: p.id, allowed: !p.screen }, 'secondary');
    }
    button('spotlight', lit(false) ? 'Remove spotlight' : 'Spotlight', (lit(false) ? 'Remove spotlight from ' : 'Spotlight ') + p.name + (p.id === me.id ? ' (you)' : ''),
      lit(false) ? { type: 'spotlight', id: '' } : { type: 'spotlight', id: p.id }, 'secondary');
    const sharing = p.id === me.id ? !!screen : streams.has(p.id + SCREEN);
    if (sharing || lit(true)) {
      button('spotlight-screen', lit(true) ? 'Remove screen spotlight' : 'Spotlight screen', (lit(true) ? 'Remove spotlight from the screen of ' : 'Spotlight the screen of ') + p.name,
        lit(true) ? { type: 'spotlight', id: '' } : { type: 'spotlight', id: p.id, screen: true }, 'secondary');
    }
    if (p.id === me.id || p.role !== 'pupil') return box;
    const reason = el('input', { type: 'text', class: 'remove-reason', id: 'remove-reason-' + p.id, maxLength: 300, autocomplete: 'off' });
    const form = el('form', { class: 'remove-form', hidden: true, noValidate: true },
      el('label', { htmlFor: reason.id, text: 'Why are you removing ' + p.name + '? They cannot rejoin this session.' }), reason,
      el('div', { class: 'row' },
        el('button', { type: 'submit', class: 'remove-confirm danger', text: 'Remove' }),
        el('button', { type: 'button', class: 'remove-cancel secondary', text: 'Cancel' })));
    const remove = el('button', { type: 'button', class: 'remove danger', text: 'Remove', 'aria-label': 'Remove ' + p.name });
    remove.addEventListener('click', () => { show(form, true); reason.focus(); });
    $('.remove-cancel', form).addEventListener('click', () => show(form, false));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!reason.value.trim()) { reason.focus(); return; }
      noteFocus('people', document.activeElement, p.id, 'remove');
      $('.remove-confirm', form).disabled = true;
      send({ type: 'remove', id: p.id, reason: reason.value.trim() });
    });
    row.append(remove);
    box.append(form);
    return box;
  }

  // ---------- telling staff: who waits, whose hand is up ----------
  // A pupil arriving in the lobby or raising a hand is said in a polite live
  // region (#announce, read by screen readers) and counted in the tab's
  // title, so a teacher on another tab or with the lobby off-screen (a
  // phone) knows.
  const baseTitle = document.title;
  const seenWaiting = new Set();
  const seenHands = new Set();
  function announce(text) {
    const a = $('#announce');
    if (!a || !text) return;
    a.textContent = '';
    setTimeout(() => { a.textContent = text; }, 50); // a changed text is read again
    hook.announced = (hook.announced || []).concat(text);
  }
  function names(list) {
    return list.length <= 1 ? list.join('') : list.slice(0, -1).join(', ') + ' and ' + list[list.length - 1];
  }
  function updateTitle() {
    if (!isStaff) return;
    const waiting = (hook.lobby || []).filter((w) => !w.denied).length;
    const hands = (rosterMsg.hands || []).filter((id) => roster.has(id)).length;
    const parts = [];
    if (waiting) parts.push(waiting + ' waiting');
    if (hands) parts.push(hands === 1 ? '1 hand up' : hands + ' hands up');
    document.title = (parts.length ? '(' + parts.join(', ') + ') ' : '') + baseTitle;
  }
  function announceLobby(waiting) {
    const fresh = waiting.filter((w) => !w.denied && !seenWaiting.has(w.id));
    const ids = new Set(waiting.map((w) => w.id));
    for (const id of [...seenWaiting]) if (!ids.has(id)) seenWaiting.delete(id);
    fresh.forEach((w) => seenWaiting.add(w.id));
    if (fresh.length) announce(names(fresh.map((w) => w.name)) + (fresh.length === 1 ? ' is' : ' are') + ' waiting to join.');
    updateTitle();
  }
  function announceHands() {
    if (!isStaff) return;
    const up = (rosterMsg.hands || []).filter((id) => roster.has(id));
    const fresh = up.filter((id) => !seenHands.has(id));
    for (const id of [...seenHands]) if (!up.includes(id)) seenHands.delete(id);
    fresh.forEach((id) => seenHands.add(id));
    if (fresh.length) announce(names(fresh.map(nameOf)) + (fresh.length === 1 ? ' has' : ' have') + ' raised a hand.');
    updateTitle();
  }

  // ---------- lobby (staff) ----------
  function lobbyItem(w) {
    const reason = el('input', { type: 'text', class: 'deny-reason', id: 'deny-reason-' + w.id, maxLength: 500, required: true, autocomplete: 'off' });
    const form = el('form', { class: 'deny-form', hidden: true, noValidate: true },
      el('label', { htmlFor: reason.id, text: 'Why are you not letting them in?' }), reason,
      el('p', { class: 'deny-error', text: 'Please give a reason.', hidden: true }),
      el('div', { class: 'row' },
        el('button', { type: 'submit', class: 'deny-confirm danger', text: 'Deny' }),
        el('button', { type: 'button', class: 'deny-cancel secondary', text: 'Cancel' })));
    const li = el('li', { 'data-participant': w.id },
      el('div', { class: 'who' }, el('strong', { class: 'name' }), el('span', { class: 'email' }), el('span', { class: 'on-roster' }),
        el('span', { class: 'looks-like warning', hidden: true }), el('span', { class: 'no-video warning', hidden: true })),
      el('div', { class: 'row' },
        el('button', { type: 'button', class: 'admit' }),
        el('button', { type: 'button', class: 'deny secondary', text: 'Deny' })),
      form);
    $('.admit', li).addEventListener('click', (ev) => {
      noteFocus('lobby', ev.currentTarget, w.id, 'admit');
      ev.currentTarget.disabled = true;
      send({ type: 'admit', id: w.id });
    });
    const openForm = (on) => { show(form, on); li.classList.toggle('deny-open', on); (on ? reason : $('.deny', li)).focus(); };
    $('.deny', li).addEventListener('click', () => openForm(true));
    $('.deny-cancel', li).addEventListener('click', () => openForm(false));
    reason.addEventListener('input', () => show($('.deny-error', form), false));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = reason.value.trim();
      show($('.deny-error', form), !text);
      if (!text) { reason.focus(); return; }
      li.classList.add('denying');
      noteFocus('lobby', document.activeElement && li.contains(document.activeElement) ? document.activeElement : null, w.id, 'admit');
      li.querySelectorAll('button').forEach((b) => { b.disabled = true; });
      send({ type: 'deny', id: w.id, reason: text });
    });
    return li;
  }
  function onLobby(waiting) {
    hook.lobby = waiting;
    if (!lobbyList) return;
    announceLobby(waiting);
    const keep = new Set(waiting.map((w) => w.id));
    // Focus in an entry that goes (the pupil was admitted or denied) moves
    // to the next entry's Admit button, or the lobby's heading.
    let focusAt = -1;
    Array.from(lobbyList.children).forEach((li, i) => {
      if (!keep.has(li.dataset.participant) && li.contains(document.activeElement)) focusAt = i;
    });
    const pf = pendingFocus && pendingFocus.area === 'lobby' ? pendingFocus : null;
    if (pf && !keep.has(pf.id)) { focusAt = pf.index; pendingFocus = null; }
    lobbyList.querySelectorAll(':scope > li').forEach((li) => { if (!keep.has(li.dataset.participant)) li.remove(); });
    waiting.forEach((w, i) => {
      // Reuse an existing item so an open deny form (and what was typed) survives updates.
      let li = lobbyList.querySelector(`:scope > li[data-participant="${CSS.escape(w.id)}"]`) || lobbyItem(w);
      $('.name', li).textContent = w.name;
      $('.email', li).textContent = w.email || '';
      const r = $('.on-roster', li);
      r.textContent = w.on_roster ? 'On the class list' : 'NOT on the class list';
      r.classList.toggle('warning', !w.on_roster);
      // Another pupil on the class list has a name that looks like this one.
      const like = $('.looks-like', li);
      like.textContent = w.looks_like ? 'Looks like ' + w.looks_like + ': check who this is' : '';
      show(like, !!w.looks_like);
      $('.admit', li).textContent = 'Admit ' + w.name;
      const nv = $('.no-video', li);
      nv.textContent = w.no_video_browser ? 'Their browser cannot join video lessons. They have been told to use Chrome, Edge, Firefox or Safari.' : '';
      show(nv, !!w.no_video_browser);
      if (!li.classList.contains('denying')) li.querySelectorAll('button').forEach((b) => { b.disabled = false; });
      if (lobbyList.children[i] !== li) lobbyList.insertBefore(li, lobbyList.children[i] || null);
    });
    show($('#lobby-empty'), waiting.length === 0);
    $('#lobby').classList.toggle('has-waiting', waiting.length > 0);
    if (pf && keep.has(pf.id) && pendingFocus === pf) { // still waiting (refused?): back on its Admit
      const li = lobbyList.querySelector(`:scope > li[data-participant="${CSS.escape(pf.id)}"]`);
      const b = li && $('.admit', li);
      if (b && !b.disabled) { b.focus(); pendingFocus = null; }
    }
    if (focusAt >= 0) {
      const next = lobbyList.children[focusAt] || lobbyList.children[focusAt - 1];
      const b = next && $('.admit', next);
      (b || $('#lobby-heading')).focus();
    }
    const all = $('#admit-all');
    if (all) {
      const n = waiting.filter((w) => w.on_roster && !w.denied && w.role === 'pupil').length;
      all.textContent = n === 1 ? 'Admit the 1 pupil on the class list' : `Admit all ${n} pupils on the class list`;
      all.disabled = false;
      show(all, n > 1);
    }
  }
  function setLocked(on) {
    locked = !!on;
    const b = $('#lock-lobby');
    if (!b) return;
    b.setAttribute('aria-pressed', String(locked));
    b.textContent = locked ? 'Unlock lobby' : 'Lock lobby';
  }

  // ---------- my media and the peer connections ----------
  async function getMedia() {
    hook.mediaRequests = (hook.mediaRequests || 0) + 1; // for tests: a watch-only pupil never asks
    const video = { width: { ideal: 640 }, height: { ideal: 360 } };
    // Try camera + microphone, then each on its own (a Chromebook may lack one of them).
    for (const c of [{ audio: true, video }, { audio: true }, { video }]) {
      try { return await navigator.mediaDevices.getUserMedia(c); } catch (err) { /* try the next */ }
    }
    return null;
  }
  function updateMediaButtons() {
    const set = (btn, kind, onLabel, offLabel) => {
      const tr = local ? local.getTracks().filter((t) => t.kind === kind) : [];
      btn.disabled = tr.length === 0;
      const on = tr.length > 0 && tr[0].enabled;
      btn.setAttribute('aria-pressed', String(tr.length > 0 && !on)); // pressed = muted / stopped
      btn.textContent = on || tr.length === 0 ? onLabel : offLabel;
    };
    set($('#toggle-mic'), 'audio', 'Mute microphone', 'Unmute microphone');
    set($('#toggle-cam'), 'video', 'Stop camera', 'Start camera');
    const m = myState.muted || {}, can = myState.can_unmute || {};
    if (m.audio && !can.audio) $('#toggle-mic').disabled = true;
    if (m.video && !can.video) $('#toggle-cam').disabled = true;
    selfTile.classList.toggle('no-video', !hasLiveVideo(local));
    const share = $('#share-screen');
    show(share, joined && (isStaff || myState.screen || !!screen) && !!navigator.mediaDevices && !!navigator.mediaDevices.getDisplayMedia);
    share.setAttribute('aria-pressed', String(!!screen));
    share.textContent = screen ? 'Stop sharing' : 'Share screen';
  }
  // wantOn is what the person chose with their own buttons. A track is on
  // only while they want it on and staff have not switched it off; nothing
  // the server says ever switches a microphone or camera on by itself (a
  // child's camera must not come on at home because staff pressed a button).
  const wantOn = { audio: true, video: true };
  function applyTracks() {
    const m = myState.muted || {};
    for (const kind of ['audio', 'video']) {
      const on = wantOn[kind] && !m[kind];
      (local ? local.getTracks() : []).filter((t) => t.kind === kind).forEach((t) => { t.enabled = on; });
    }
  }
  function toggle(kind) {
    const tr = local ? local.getTracks().filter((t) => t.kind === kind) : [];
    if (!tr.length) return;
    const on = !tr[0].enabled;
    if (on && (myState.muted || {})[kind]) {
      // Muted by staff: switching back on is the gateway's call.
      if (!(myState.can_unmute || {})[kind]) { flash(kind === 'audio' ? 'Your teacher has muted you.' : 'Your teacher has turned off your camera.'); return; }
      send({ type: 'unmute_self', kind });
      myState.muted = Object.assign({}, myState.muted, { [kind]: false }); // the gateway's state follows
    }
    wantOn[kind] = on;
    allowedNote[kind] = false;
    applyTracks();
    applyMuted();
  }
  $('#toggle-mic').addEventListener('click', () => toggle('audio'));
  $('#toggle-cam').addEventListener('click', () => toggle('video'));

  let mediaFailures = 0; // media connections that failed in a row
  function makePC(name) {
    const pc = new RTCPeerConnection({ iceServers });
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate) send({ type: 'candidate', pc: name, candidate: e.candidate.toJSON() });
    });
    pc.addEventListener('connectionstatechange', () => {
      if (terminal || pcs[name] !== pc) return;
      const st = pc.connectionState;
      if (st === 'connected') { mediaFailures = 0; mediaConnected(pc); iceRestarted(name); return; }
      // The network changed under the connection (Wi-Fi to 4G, a new
      // address): restart ICE on it first, which keeps the lesson as it is.
      if (st === 'disconnected' || st === 'failed') restartIce(name, pc);
    });
    if (name === 'down') pc.addEventListener('track', onTrack);
    pcs[name] = pc;
    watchConnect();
    return pc;
  }
  // ICE restart: new candidates on the same connections, so the same
  // lesson, tracks and admission; the gateway offers DOWN again when asked
  // (ice_restart), the page offers UP again itself. Staff see this person
  // reconnecting meanwhile. Only if that does not bring the connection back
  // within ICE_RESTART_WAIT does the page start again over new connections
  // (drop; the gateway lets us straight back in).
  const ICE_RESTART_WAIT = 15000;
  const ICE_RESTART_EVERY = 4000;
  const iceRestarts = hook.iceRestarts = { up: 0, down: 0 }; // timers of restarts under way
  let mediaReconnectingSent = false;
  function reportMediaReconnecting() { // tells staff, once per change
    const on = !!(iceRestarts.up || iceRestarts.down);
    if (on === mediaReconnectingSent) return;
    mediaReconnectingSent = on;
    send({ type: 'media_reconnecting', reconnecting: on });
  }
  function restartIce(name, pc) {
    if (iceRestarts[name]) return;
    const started = Date.now();
    // A restart made while the network is still away cannot succeed, so
    // it is made again every ICE_RESTART_EVERY until the connection is back.
    const attempt = () => {
      if (name === 'up') offerUp((p) => p.restartIce());
      else send({ type: 'ice_restart' });
    };
    const check = () => {
      iceRestarts[name] = 0;
      if (terminal || pcs[name] !== pc || pc.connectionState === 'connected') { reportMediaReconnecting(); return; }
      if (Date.now() - started >= ICE_RESTART_WAIT) {
        reportMediaReconnecting();
        if (++mediaFailures <= 3) drop();
        else flash('The video connection is not working. Try leaving and joining again.');
        return;
      }
      attempt();
      iceRestarts[name] = setTimeout(check, ICE_RESTART_EVERY);
    };
    iceRestarts[name] = setTimeout(check, ICE_RESTART_EVERY);
    reportMediaReconnecting();
    attempt();
  }
  function iceRestarted(name) {
    clearTimeout(iceRestarts[name]);
    iceRestarts[name] = 0;
    reportMediaReconnecting();
  }
  async function setRemote(name, desc) {
    const pc = pcs[name];
    await pc.setRemoteDescription(desc);
    const queued = pending[name].splice(0);
    for (const c of queued) await pc.addIceCandidate(c).catch((err) => console.warn('candidate', name, err));
  }
  // Offers and answers for one connection are handled strictly one after another.
  function enqueue(name, fn) {
    chains[name] = chains[name].then(fn).catch((err) => {
      console.error('signalling', name, err);
      if (!terminal) flash('Something went wrong setting up the video. Try leaving and joining again.');
    });
  }
  // offerUp (re)negotiates my UP connection, then waits for the gateway's
  // answer before the next change may start. screen_tracks tells the gateway
  // which of my tracks are a screen share.
  let upAnswered = null;
  function offerUp(change) {
    enqueue('up', async () => {
      if (!joined) return;
      const pc = pcs.up || makePC('up');
      change(pc);
      await pc.setLocalDescription(await pc.createOffer());
      const answered = new Promise((resolve) => { upAnswered = resolve; });
      const msg = { type: 'offer', pc: 'up', sdp: pc.localDescription.sdp };
      if (screen) msg.screen_tracks = screen.getTracks().map((t) => t.id);
      send(msg);
      await Promise.race([answered, new Promise((resolve) => setTimeout(resolve, 15000))]);
    });
  }

  // ---------- network check ----------
  // Before joining: a browser that cannot make video calls at all is told
  // so at once. After joining: if no media connection comes up within
  // MEDIA_CONNECT_WAIT (UDP, TCP and the relay all tried), the page says in
  // plain words that the network is blocking the lesson, instead of
  // showing black tiles.
  const MEDIA_CONNECT_WAIT = 10000;
  const NETWORK_BLOCKED = 'Your network is blocking video lessons. Ask an adult to let this device reach the school\'s lesson server, or try another network (for example a phone\'s hotspot). You can stay on this page: the lesson starts as soon as the connection works.';
  const NO_WEBRTC = 'This browser cannot join video lessons. Ask an adult to update it, or use another browser (Chrome, Edge, Firefox or Safari).';
  let connectTimer = 0;
  function networkMessage(text) {
    const nm = $('#network-message');
    nm.textContent = text;
    show(nm, !!text);
    hook.networkMessage = text;
  }
  if (typeof RTCPeerConnection === 'undefined') networkMessage(NO_WEBRTC);
  function watchConnect() { // from when the first media connection is made
    if (connectTimer) return;
    connectTimer = setTimeout(() => {
      const up = ['up', 'down'].some((n) => pcs[n] && pcs[n].connectionState === 'connected');
      if (!up && joined && !terminal) networkMessage(NETWORK_BLOCKED);
    }, MEDIA_CONNECT_WAIT);
  }
  function mediaConnected(pc) {
    clearTimeout(connectTimer);
    connectTimer = -1; // connected once: the ICE restart and reconnect logic takes over
    if (hook.networkMessage === NETWORK_BLOCKED) networkMessage('');
    clearTimeout(probeAgain);
    endProbe();
    // The lesson's own connection settles the check if it was still going.
    if (pc) {
      transportOf(pc).then((tr) => {
        if (!tr) return;
        hook.check.media = tr;
        if (hook.check.network !== 'ok') setNetworkCheck('ok', tr);
        showTransport(tr, true);
      }).catch(() => {});
    }
  }

  // ---------- the check before joining ----------
  // On arrival (and every PROBE_AGAIN while it fails) the page checks its
  // connection: a peer connection that only receives audio (none is sent),
  // through the
  // same servers and relay as the lesson. A pupil sees the result while
  // waiting (#precheck), everyone in #connection-info, and a network that
  // blocks video is named before anyone is admitted. The camera and
  // microphone are checked only when the person presses the button: the
  // camera light never comes on by itself in the lobby.
  const PROBE_WAIT = 12000;
  const PROBE_AGAIN = 15000;
  const TRANSPORT_WORDS = { udp: 'a direct connection', tcp: 'a connection over TCP', relay: "the school's relay" };
  let probePC = null;
  let probeTimer = 0;
  let probeAgain = 0;
  let precheck = null; // the camera and microphone the person checked, handed to join()
  hook.check = { network: 'checking', transport: '', devices: '', micLevel: 0 };
  function setNetworkCheck(state, transport) {
    hook.check.network = state;
    hook.check.transport = transport || '';
    const li = $('#check-network');
    if (li) {
      li.dataset.state = state;
      li.textContent = state === 'ok' ? `Your connection to the lesson works (${TRANSPORT_WORDS[transport] || transport}).`
        : state === 'blocked' ? 'Your network is blocking video lessons (see the message above).' : 'Checking your connection to the lesson…';
    }
    showTransport(state === 'ok' ? transport : '', false);
  }
  function showTransport(transport, inLesson) {
    const ci = $('#connection-info');
    if (!ci) return;
    if (!transport) { if (!inLesson) ci.textContent = ''; return; }
    ci.textContent = (inLesson ? 'Connected: ' : 'Connection check: works, ') + (TRANSPORT_WORDS[transport] || transport) + '.';
    ci.dataset.transport = transport;
  }
  // transportOf is how pc's selected candidate pair goes: "udp", "tcp" or
  // "relay" ("" before there is one).
  async function transportOf(pc) {
    const stats = await pc.getStats();
    let pair;
    stats.forEach((r) => {
      if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
    });
    if (!pair) stats.forEach((r) => { if (r.type === 'candidate-pair' && r.selected) pair = r; }); // Firefox
    const local = pair && stats.get(pair.localCandidateId);
    if (!local) return '';
    if (local.candidateType === 'relay') return 'relay';
    return local.protocol === 'tcp' ? 'tcp' : 'udp';
  }
  function gathered(pc, wait) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, wait);
      pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); } });
    });
  }
  function endProbe() {
    clearTimeout(probeTimer);
    const pc = probePC;
    probePC = null;
    if (pc) try { pc.close(); } catch (err) { /* closed already */ }
  }
  function mediaUp() { return ['up', 'down'].some((n) => pcs[n] && pcs[n].connectionState === 'connected'); }
  async function probe() {
    clearTimeout(probeAgain);
    if (probePC || terminal || final || mediaUp() || typeof RTCPeerConnection === 'undefined') return;
    if (hook.check.network !== 'ok') setNetworkCheck('checking');
    let pc;
    try { pc = new RTCPeerConnection({ iceServers }); } catch (err) { return; }
    probePC = pc;
    hook.probes = (hook.probes || 0) + 1;
    pc.addTransceiver('audio', { direction: 'recvonly' }); // no microphone, no data channel: the SFU sends nothing on it
    pc.addEventListener('connectionstatechange', async () => {
      if (pc !== probePC) return;
      if (pc.connectionState === 'connected') {
        const tr = await transportOf(pc).catch(() => '');
        if (pc !== probePC) return;
        endProbe();
        setNetworkCheck('ok', tr || 'udp');
        if (hook.networkMessage === NETWORK_BLOCKED) networkMessage('');
      } else if (pc.connectionState === 'failed') probeFailed(pc);
    });
    probeTimer = setTimeout(() => probeFailed(pc), PROBE_WAIT);
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, 5000);
      if (pc === probePC) send({ type: 'probe', sdp: pc.localDescription.sdp });
    } catch (err) { probeFailed(pc); }
  }
  function probeFailed(pc) {
    if (!pc || pc !== probePC) return;
    endProbe();
    if (mediaUp()) return;
    setNetworkCheck('blocked');
    networkMessage(NETWORK_BLOCKED);
    probeAgain = setTimeout(probe, PROBE_AGAIN);
  }
  function onProbeAnswer(sdp) {
    const pc = probePC;
    if (pc) pc.setRemoteDescription({ type: 'answer', sdp }).catch(() => probeFailed(pc));
  }
  function onProbeError(m) {
    const pc = probePC;
    if (!pc) return;
    if (m.code === 'probe_refused') { probeFailed(pc); return; }
    endProbe(); // the server is busy: try again shortly, say nothing yet
    probeAgain = setTimeout(probe, PROBE_AGAIN);
  }

  async function checkDevices() {
    const btn = $('#check-devices-btn');
    const li = $('#check-devices');
    if (!btn || !li) return;
    btn.disabled = true;
    li.dataset.state = 'checking';
    li.textContent = 'Asking for your camera and microphone… If the browser asks, choose “Allow”.';
    const got = await getMedia();
    btn.disabled = false;
    if (joined || terminal) { if (got) got.getTracks().forEach((t) => t.stop()); return; }
    if (!got) {
      hook.check.devices = 'none';
      li.dataset.state = 'blocked';
      li.textContent = 'Your camera and microphone are not available. Ask an adult to allow them for this website. You can still watch and listen.';
      return;
    }
    if (precheck) precheck.getTracks().forEach((t) => t.stop());
    precheck = got;
    const v = got.getVideoTracks().length > 0;
    const a = got.getAudioTracks().length > 0;
    hook.check.devices = v && a ? 'ok' : v ? 'no-mic' : 'no-camera';
    li.dataset.state = v && a ? 'ok' : 'partial';
    li.textContent = v && a ? 'Your camera works. Say something: the microphone bar moves when it hears you.'
      : v ? 'Your camera works, but no microphone was found. You can still watch and listen.'
        : 'Your microphone works (the bar moves when it hears you), but no camera was found.';
    const preview = $('#precheck-preview');
    $('video', preview).srcObject = got;
    play($('video', preview));
    show(preview, true);
    show(btn, false);
    if (a) micMeter(got);
  }
  function micMeter(stream) {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    let ctx;
    try { ctx = new AC(); } catch (err) { return; }
    const an = ctx.createAnalyser();
    an.fftSize = 512;
    ctx.createMediaStreamSource(stream).connect(an);
    const buf = new Uint8Array(an.fftSize);
    const meter = $('#mic-level');
    const tick = setInterval(() => {
      if (precheck !== stream) { clearInterval(tick); ctx.close().catch(() => {}); return; }
      an.getByteTimeDomainData(buf);
      let peak = 0;
      for (const x of buf) peak = Math.max(peak, Math.abs(x - 128));
      const level = peak / 128;
      meter.value = level;
      hook.check.micLevel = Math.max(hook.check.micLevel, level);
    }, 100);
    if (ctx.state === 'suspended') ctx.resume().catch(() => {});
  }
  const checkBtn = $('#check-devices-btn');
  if (checkBtn) checkBtn.addEventListener('click', checkDevices);
  // takePrecheck hands the checked camera and microphone to the lesson (no
  // second prompt, no camera light going off and on), if still live.
  function takePrecheck() {
    const got = precheck;
    precheck = null;
    show($('#precheck-preview'), false);
    if (got && got.getTracks().some((t) => t.readyState === 'live')) return got;
    if (got) got.getTracks().forEach((t) => t.stop());
    return null;
  }

  async function join() {
    joined = true;
    if (myState.watch_only) {
      // A pupil in a streamed lesson sends nothing: no camera, no microphone,
      // not even asked for (the camera light stays off).
      const checked = takePrecheck();
      if (checked) checked.getTracks().forEach((t) => t.stop());
      const mm = $('#media-message');
      mm.textContent = WATCH_ONLY;
      show(mm, true);
      updateMediaButtons();
      return;
    }
    local = takePrecheck() || await getMedia();
    if (!joined) { stopLocal(); return; } // the session ended while we were asking
    $('video', selfTile).srcObject = local;
    if (local) play($('video', selfTile));
    applyMuted();
    const missing = !local ? 'Your camera and microphone are not available; you can still watch and listen.'
      : !local.getAudioTracks().length ? 'Your microphone is not available; you can still watch and listen.'
        : !local.getVideoTracks().length ? 'Your camera is not available; others can still hear you.' : '';
    const mm = $('#media-message');
    mm.textContent = missing;
    show(mm, !!missing);
    if (!local) return; // nothing to send: only the DOWN connection will be used, until I share a screen
    offerUp((pc) => { for (const t of local.getTracks()) pc.addTransceiver(t, { direction: 'sendonly', streams: [local] }); });
  }

  // ---------- screen sharing ----------
  const screenSenders = [];
  async function startShare() {
    let s;
    try {
      s = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: true });
    } catch (err) {
      if (err && err.name !== 'NotAllowedError') flash('Your screen could not be shared.');
      return;
    }
    if (!joined || (!isStaff && !myState.screen)) { s.getTracks().forEach((t) => t.stop()); return; }
    screen = s;
    const v = s.getVideoTracks()[0];
    if (v) v.addEventListener('ended', () => stopShare()); // the browser's own "Stop sharing"
    const t = tileFor(me.id + SCREEN);
    attach(t, s);
    offerUp((pc) => {
      for (const tr of s.getTracks()) screenSenders.push(pc.addTransceiver(tr, { direction: 'sendonly', streams: [s] }).sender);
    });
    layout();
    updateMediaButtons();
    renderPeople();
  }
  function stopShare(why) {
    if (!screen) return;
    const s = screen;
    screen = null;
    s.getTracks().forEach((t) => t.stop());
    const senders = screenSenders.splice(0);
    if (pcs.up) offerUp((pc) => { for (const snd of senders) { try { pc.removeTrack(snd); } catch (err) { /* closed */ } } });
    dropTile(tileFor(me.id + SCREEN, false));
    layout();
    updateMediaButtons();
    renderPeople();
    if (why) flash(why);
  }
  $('#share-screen').addEventListener('click', () => { if (screen) stopShare(); else startShare(); });

  // ---------- raising a hand ----------
  const handBtn = $('#raise-hand');
  if (handBtn) handBtn.addEventListener('click', () => send({ type: 'hand', raised: !myState.hand }));

  // Staff switched a source off (or pupils may not switch it on): tell the
  // person, and switch it off here too (the gateway drops it anyway). When
  // staff let it through again it stays off: the person is told they may
  // switch it on, and only their own press does.
  const WATCH_ONLY = "You can watch and listen. Others can't see or hear you.";
  const offByStaff = { audio: false, video: false };
  const allowedNote = { audio: false, video: false }; // "your teacher says you can…" showing
  function applyMuted() {
    const m = myState.muted || {}, can = myState.can_unmute || {};
    for (const kind of ['audio', 'video']) {
      if (m[kind] && !offByStaff[kind]) { offByStaff[kind] = true; wantOn[kind] = false; allowedNote[kind] = false; }
      else if (!m[kind] && offByStaff[kind]) { offByStaff[kind] = false; allowedNote[kind] = !wantOn[kind]; }
    }
    applyTracks();
    const parts = [];
    if (m.audio) parts.push(can.audio ? 'Your teacher muted your microphone. You can unmute it when you need to speak.' : 'Your teacher has muted you.');
    else if (allowedNote.audio) parts.push('Your teacher says you can talk now. Press “Unmute microphone” to talk.');
    if (m.video) parts.push(can.video ? 'Your teacher turned off your camera. You can turn it back on.' : 'Your teacher has turned off your camera.');
    else if (allowedNote.video) parts.push('Your teacher says you can use your camera now. Press “Start camera” to turn it on.');
    const box = $('#muted-message');
    if (box) {
      box.textContent = parts.join(' ');
      show(box, parts.length > 0);
      box.classList.toggle('allowed', !m.audio && !m.video && parts.length > 0);
    }
    hook.allowedNote = Object.assign({}, allowedNote);
    updateMediaButtons();
  }

  function onOffer(name, sdp) {
    enqueue(name, async () => {
      if (!pcs[name]) {
        if (name !== 'down') return; // only the gateway's DOWN connection is created on its offer
        makePC('down');
      }
      const pc = pcs[name];
      await setRemote(name, { type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      send({ type: 'answer', pc: name, sdp: pc.localDescription.sdp });
    });
  }
  // Not queued: the offer that waits for it holds the queue.
  async function onAnswer(name, sdp) {
    try {
      if (pcs[name] && pcs[name].signalingState === 'have-local-offer') await setRemote(name, { type: 'answer', sdp });
    } catch (err) {
      console.error('signalling', name, err);
    }
    if (name === 'up' && upAnswered) { const r = upAnswered; upAnswered = null; r(); }
  }
  function onCandidate(name, cand) {
    if (!cand || !pending[name]) return;
    const pc = pcs[name];
    if (pc && pc.remoteDescription) pc.addIceCandidate(cand).catch((err) => console.warn('candidate', name, err));
    else pending[name].push(cand);
  }
  function stopLocal() {
    if (local) local.getTracks().forEach((t) => t.stop());
    local = null;
  }
  function teardown() { // close all media; keep the page
    joined = false;
    if (screen) { screen.getTracks().forEach((t) => t.stop()); screen = null; }
    screenSenders.length = 0;
    mediaReconnectingSent = false; // a new connection starts with it off
    clearTimeout(connectTimer);
    connectTimer = 0;
    for (const name of ['up', 'down']) {
      clearTimeout(iceRestarts[name]);
      iceRestarts[name] = 0;
      if (pcs[name]) pcs[name].close();
      pcs[name] = null;
      pending[name] = [];
    }
    stopLocal();
    $('video', selfTile).srcObject = null;
    streams.clear();
    tiles.querySelectorAll('.tile[data-key]').forEach(dropTile);
    layout();
    updateMediaButtons();
  }

  // ---------- terminal notices ----------
  const NOTICES = {
    denied: ['You have not been let in', 'Ask your teacher if you think this is a mistake.'],
    removed: ['You have been removed from the lesson', 'You cannot join this lesson again.'],
    ended: ['The lesson has ended', 'Thank you for joining.'],
    left: ['You have left the lesson', 'You can join again if you need to.'],
    lost: ['Connection lost', 'Check that you are connected to the internet, then try again.'],
    replaced: ['This lesson is open in another window', 'Carry on in the other window, or press “Try again” to use this one.'],
    unsupported: ['This browser cannot join video lessons', 'Ask an adult to open this page in another browser: a recent Chrome, Edge, Firefox or Safari. Your teacher can see that you tried to join.'],
  };
  function finish(kind, banner, reason) {
    terminal = true;
    if (kind !== 'denied') final = true;
    teardown();
    endProbe();
    clearTimeout(probeAgain);
    const checked = takePrecheck(); // the camera goes off with the lesson
    if (checked) checked.getTracks().forEach((t) => t.stop());
    room.dataset.phase = kind;
    const [title, text] = NOTICES[kind];
    $('#notice-title').textContent = banner || title; // the server's words win
    $('#notice-text').textContent = text;
    const r = $('#notice-reason');
    // A pupil is told a deny or removal reason as their teacher's words;
    // how a lesson ended is for staff.
    const said = reason && (isStaff || kind !== 'ended') ? reason : '';
    r.textContent = !said ? '' : isStaff ? 'Reason: ' + said : 'Your teacher said: “' + said + '”';
    show(r, !!said);
    const retry = $('#retry');
    retry.textContent = kind === 'left' ? 'Join again' : 'Try again';
    show(retry, kind === 'lost' || kind === 'left' || kind === 'replaced');
    show($('#room-ui'), false);
    show($('#banner-area'), false);
    show($('#recording-indicator'), false);
    show($('#notice'), true);
    $('#notice').className = 'notice-' + kind;
    $('#notice-title').focus();
    // A browser that cannot do video keeps its connection, so staff keep
    // seeing that this pupil tried to join and why they cannot.
    if (final && kind !== 'unsupported' && ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  }
  function unfinish() { // a denied pupil may be waiting again
    terminal = false;
    show($('#notice'), false);
    show($('#room-ui'), true);
    show($('#banner-area'), true);
  }
  $('#retry').addEventListener('click', () => location.reload());
  $('#leave').addEventListener('click', () => finish('left'));

  const endBtn = $('#end-session');
  if (endBtn) {
    const box = $('#end-confirm');
    endBtn.addEventListener('click', () => { show(box, true); show(endBtn, false); $('#end-confirm-no').focus(); });
    $('#end-confirm-no').addEventListener('click', () => { show(box, false); show(endBtn, true); endBtn.focus(); });
    $('#end-confirm-yes').addEventListener('click', (ev) => { ev.currentTarget.disabled = true; send({ type: 'end' }); });
  }
  const ackBtn = $('#ack-recording');
  if (ackBtn) ackBtn.addEventListener('click', () => { ackBtn.disabled = true; ackPending = true; send({ type: 'ack_recording_notice' }); });
  // ---------- chat: every message goes to the whole room ----------
  const chatList = $('#chat-list');
  let chatPupils = true;
  function chatItem(m) {
    const li = el('li', { 'data-message': m.id },
      el('strong', { text: m.from.name + (m.from.role === 'staff' ? ' (staff)' : '') + ': ' }),
      el('span', { class: 'text', text: m.text })); // text, never HTML
    if (isStaff) {
      const del = el('button', { type: 'button', class: 'chat-delete link', text: 'Delete', 'aria-label': 'Delete message from ' + m.from.name });
      del.addEventListener('click', () => { del.disabled = true; send({ type: 'chat_delete', id: m.id }); });
      li.append(' ', del);
    }
    return li;
  }
  function addChat(m) { if (chatList) { chatList.append(chatItem(m)); chatList.scrollTop = chatList.scrollHeight; } }
  function applyChatAllowed(on) {
    chatPupils = on;
    const b = $('#chat-pupils');
    if (b) { b.textContent = on ? "Turn pupils' chat off" : "Turn pupils' chat on"; b.setAttribute('aria-pressed', String(!on)); }
    if (!isStaff) {
      // A pupil still in the lobby cannot write yet: the chat is the lesson's.
      const waiting = room.dataset.phase === 'waiting';
      show($('#chat-form'), on && !waiting);
      show($('#chat-off'), !on && !waiting);
      show($('#chat-wait'), waiting);
    }
  }
  const chatForm = $('#chat-form');
  if (chatForm) {
    chatForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = $('#chat-text');
      const text = input.value.trim();
      if (!text) return;
      send({ type: 'chat', text });
      input.value = '';
    });
  }
  const chatPupilsBtn = $('#chat-pupils');
  if (chatPupilsBtn) chatPupilsBtn.addEventListener('click', () => send({ type: 'chat_pupils', allowed: !chatPupils }));

  const concernBtn = $('#raise-concern');
  if (concernBtn) {
    concernBtn.addEventListener('click', () => { show($('#concern-confirm'), true); $('#concern-confirm-yes').focus(); });
    $('#concern-confirm-no').addEventListener('click', () => show($('#concern-confirm'), false));
    $('#concern-confirm-yes').addEventListener('click', (ev) => { ev.currentTarget.disabled = true; send({ type: 'concern' }); });
  }
  const lockBtn = $('#lock-lobby');
  if (lockBtn) lockBtn.addEventListener('click', () => send({ type: 'lock', locked: !locked }));
  const admitAll = $('#admit-all');
  if (admitAll) admitAll.addEventListener('click', () => { admitAll.disabled = true; send({ type: 'admit_all' }); });
  // A lone pupil of a class waits (media held, nothing recorded) until a
  // second pupil is admitted, or until staff choose to record (R5).
  const startRec = $('#start-recording');
  if (startRec) startRec.addEventListener('click', () => { startRec.disabled = true; send({ type: 'record' }); });
  const muteAll = $('#mute-all');
  if (muteAll) muteAll.addEventListener('click', () => send({ type: 'mute_all', kind: 'audio' }));
  const pupilsUnmute = $('#pupils-unmute');
  if (pupilsUnmute) pupilsUnmute.addEventListener('click', () => { pupilsUnmute.disabled = true; send({ type: 'pupil_media', kind: 'audio', allowed: !rosterMsg.pupil_media.audio }); });
  const pupilsCamera = $('#pupils-camera');
  if (pupilsCamera) pupilsCamera.addEventListener('click', () => { pupilsCamera.disabled = true; send({ type: 'pupil_media', kind: 'video', allowed: !rosterMsg.pupil_media.video }); });

  // ---------- server messages ----------
  function onState(s) {
    hook.state = s;
    if (final || (terminal && room.dataset.phase === s.phase)) return;
    if (reconnecting) reconnected();
    if (s.phase === 'denied' || s.phase === 'removed' || s.phase === 'ended') {
      finish(s.phase, s.banner, s.reason);
      return;
    }
    if (terminal) unfinish();
    room.dataset.phase = s.phase;
    room.dataset.gate = s.gate || '';
    setBanner(s.banner || (s.phase === 'waiting' ? 'Waiting for your teacher to let you in' : 'You are in the lesson'));
    room.dataset.recording = s.recording || 'off';
    show($('#recording-indicator'), s.recording === 'confirmed' || s.recording === 'starting');
    const notice = $('#recording-notice');
    if (notice) {
      const wasHidden = notice.hidden;
      show(notice, s.notice === true);
      if (s.notice === true && wasHidden) { $('#ack-recording').disabled = false; $('#ack-recording').focus(); }
      if (s.notice !== true && ackPending) { // the notice went: keep the keyboard in the lesson's controls
        ackPending = false;
        setTimeout(() => { const b = $('#toggle-mic'); (b && !b.disabled ? b : $('#leave')).focus(); }, 0);
      }
    }
    setLocked(s.locked);
    if (startRec) {
      const offered = s.offer_record === true;
      if (offered && startRec.hidden) startRec.disabled = false;
      show(startRec, offered);
    }
    const hadScreen = myState.screen;
    myState = { muted: s.muted || {}, can_unmute: s.can_unmute || {}, screen: !!s.screen, hand: !!s.hand, watch_only: !!s.watch_only };
    hook.muted = myState.muted;
    applyMuted();
    renderHands();
    if (hadScreen && !myState.screen && screen && !isStaff) stopShare('Your teacher has stopped your screen sharing.');
    applyChatAllowed(s.chat_pupils !== false);
    if (myState.watch_only && $('#check-devices')) {
      show($('#check-devices-btn'), false);
      $('#check-devices').dataset.state = 'ok';
      $('#check-devices').textContent = 'In this lesson you watch and listen: your camera and microphone are not used.';
    }
    if (s.phase === 'admitted' && !joined) join();
  }
  const handlers = {
    welcome(m) {
      me = m.you || me;
      hook.you = me;
      iceServers = Array.isArray(m.ice_servers) ? m.ice_servers : [];
      $('figcaption', selfTile).textContent = `You (${me.name})`;
      selfTile.dataset.participant = me.id;
      if (typeof RTCPeerConnection === 'undefined') {
        // No video calls at all in this browser: say so before joining,
        // and let staff see it (the connection stays, so they do).
        send({ type: 'no_video_browser' });
        finish('unsupported');
        return;
      }
      if (hook.check.network !== 'ok') probe();
    },
    state: onState,
    roster: (m) => onRoster(m),
    lobby: (m) => onLobby(m.waiting || []),
    offer: (m) => onOffer(m.pc, m.sdp),
    answer: (m) => onAnswer(m.pc, m.sdp),
    candidate: (m) => onCandidate(m.pc, m.candidate),
    probe_answer: (m) => onProbeAnswer(m.sdp),
    error(m) {
      if (m.code === 'replaced') { finish('replaced'); return; }
      if (m.code === 'probe_busy' || m.code === 'probe_refused') { onProbeError(m); return; }
      flash(m.message || 'Something went wrong.');
      // A refused up offer gets no answer: let the next change go ahead now.
      if ((m.code === 'bad_message' || m.code === 'bad_sdp') && upAnswered) { const r = upAnswered; upAnswered = null; r(); }
      // Let staff try again: re-enable buttons disabled while waiting for the server.
      room.querySelectorAll('#lobby-list button, #end-confirm-yes, #admit-all, #start-recording, #people button, #hands-list button, #class-tools button').forEach((b) => { b.disabled = false; });
      room.querySelectorAll('#lobby-list li.denying').forEach((li) => li.classList.remove('denying'));
    },
    ended: (m) => { if (!final) finish('ended', '', m.reason); },
    chat: (m) => addChat(m),
    chat_history: (m) => { if (chatList) { chatList.replaceChildren(); (m.messages || []).forEach(addChat); } },
    chat_deleted: (m) => { const li = chatList && chatList.querySelector(`li[data-message="${CSS.escape(m.id)}"]`); if (li) li.remove(); },
    concern_form: (m) => { if (typeof m.url === 'string' && m.url.startsWith('/')) location.assign(m.url); },
    removed: (m) => { if (!final) finish('removed', '', m.reason); },
    pong: () => {},
  };

  // ---------- reconnecting ----------
  // A dropped connection (a Wi-Fi blip, the page's network gone for a
  // moment, the lesson server restarting) is not the end: the page keeps
  // trying, and within the rejoin grace the gateway lets an admitted pupil
  // straight back in. After RECONNECT_FOR it gives up and says so.
  const RECONNECT_FOR = 3 * 60 * 1000;
  let reconnecting = false;
  let reconnectUntil = 0;
  let retryTimer = 0;
  let attempts = 0;
  let lastHeard = Date.now();
  let pingSent = 0;     // when the last ping went out, 0 once it was answered
  let connectedAt = 0;  // when the current connection was let back in
  function startReconnect() {
    if (terminal) return;
    if (!reconnecting) {
      reconnecting = true;
      // A connection that dropped again soon after coming back keeps the
      // earlier budget, so a server that accepts and then closes cannot
      // keep the page trying for ever.
      if (Date.now() - connectedAt > 30000) { reconnectUntil = Date.now() + RECONNECT_FOR; attempts = 0; }
      teardown();
      room.dataset.phase = 'reconnecting';
      setBanner('Reconnecting… Your connection dropped. You will be back in the lesson in a moment.');
    }
    if (Date.now() > reconnectUntil) { reconnecting = false; finish('lost'); return; }
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, Math.min(1000 * 2 ** attempts, 5000));
    attempts++;
    // After a few refused attempts, ask for the page itself: if the lesson
    // has ended or the sign-in has expired, the page says so (a refused
    // WebSocket cannot tell the page why).
    if (attempts >= 3) {
      fetch(location.href, { redirect: 'manual', cache: 'no-store' }).then((res) => {
        const refused = res.type === 'opaqueredirect' || (res.status !== 200 && res.status < 500);
        if (reconnecting && refused) location.reload();
      }).catch(() => { /* still offline: keep trying */ });
    }
  }
  // drop gives up on the current connection at once (the browser may take
  // long to notice a network that went away) and starts reconnecting.
  function drop() {
    const old = ws;
    ws = null;
    if (old) try { old.close(); } catch (err) { /* already closing */ }
    startReconnect();
  }
  function reconnected() {
    reconnecting = false;
    connectedAt = Date.now();
    clearTimeout(retryTimer);
  }
  // The device says its network is gone (Wi-Fi dropped): do not wait for
  // the connection to time out, start reconnecting now.
  window.addEventListener('offline', () => { if (!terminal && !reconnecting && ws) drop(); });
  window.addEventListener('online', () => {
    if (reconnecting && (!ws || ws.readyState === WebSocket.CLOSED)) { clearTimeout(retryTimer); connect(); }
  });
  // The page pings; a ping unanswered for 30 s means the connection is dead
  // even if the browser has not noticed yet (a network that went away). A
  // late timer (a background tab) only sends the next ping.
  setInterval(() => {
    if (!ws || ws.readyState !== WebSocket.OPEN || terminal) return;
    if (pingSent && lastHeard < pingSent && Date.now() - pingSent > 30000) { drop(); return; }
    if (!pingSent || lastHeard >= pingSent) { pingSent = Date.now(); send({ type: 'ping' }); }
  }, 15000);

  function connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + room.dataset.ws;
    const sock = new WebSocket(url);
    ws = sock;
    lastHeard = Date.now();
    pingSent = 0;
    // An attempt that hangs (a network that changed under it) is given up.
    setTimeout(() => { if (ws === sock && sock.readyState === WebSocket.CONNECTING) drop(); }, 10000);
    sock.addEventListener('message', (ev) => {
      lastHeard = Date.now();
      let m;
      try { m = JSON.parse(ev.data); } catch (err) { return; }
      const h = m && handlers[m.type];
      if (!h) return;
      if (final && m.type !== 'state') return;
      try { h(m); } catch (err) { console.error('message', m.type, err); }
    });
    sock.addEventListener('close', () => {
      if (sock !== ws) return; // an older connection
      if (!terminal) startReconnect();
      else if (!final) final = true; // denied and then disconnected: nothing more will come
    });
  }
  // Leaving the page (or it going into the back/forward cache) ends this visit cleanly.
  window.addEventListener('pagehide', () => { if (ws) ws.close(1000); });
  updateMediaButtons();
  connect();
})();
