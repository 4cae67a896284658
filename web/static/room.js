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
  let roster = new Map();    // id -> {id, name, role}
  const pcs = { up: null, down: null };
  const pending = { up: [], down: [] };  // ICE candidates waiting for a remote description
  const chains = { up: Promise.resolve(), down: Promise.resolve() };
  const streams = new Map(); // participant id -> remote MediaStream
  const hook = window.chaperoneRoom = { state: null, roster: [], lobby: [], you: null, pcs };

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
  function tileFor(id, create = true) {
    let t = tiles.querySelector(`.tile[data-participant="${CSS.escape(id)}"]`);
    if (!t && create) {
      const video = el('video', { autoplay: true, playsInline: true });
      video.setAttribute('playsinline', '');
      t = el('figure', { class: 'tile no-video', 'data-participant': id }, video, el('figcaption'));
      tiles.append(t);
    }
    if (t) {
      const p = roster.get(id);
      const name = p ? p.name : 'Someone';
      const cap = $('figcaption', t);
      if (cap.textContent !== name) cap.textContent = name;
      if (streams.has(id)) attach(t, streams.get(id));
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
  function play(video) {
    const p = video.play();
    if (p && p.catch) p.catch(() => show($('#play-all'), true)); // autoplay blocked: ask for a tap
  }
  $('#play-all').addEventListener('click', () => {
    tiles.querySelectorAll('video').forEach((v) => { if (v.srcObject) v.play().catch(() => {}); });
    show($('#play-all'), false);
  });

  // A remote stream arrived on the DOWN connection; its id is the publisher's participant id.
  function onTrack(e) {
    const stream = e.streams[0];
    if (!stream) return;
    const id = stream.id;
    const check = () => streamChanged(id, stream);
    if (streams.get(id) !== stream) {
      streams.set(id, stream);
      stream.addEventListener('removetrack', check);
      stream.addEventListener('addtrack', check);
    }
    e.track.addEventListener('ended', check);
    e.track.addEventListener('mute', check);
    e.track.addEventListener('unmute', check);
    if (id !== me.id) tileFor(id);
  }
  function streamChanged(id, stream) {
    if (streams.get(id) !== stream) return;
    const t = tileFor(id, false);
    if (!stream.getTracks().some((tr) => tr.readyState === 'live')) {
      streams.delete(id);
      if (t) { detach(t); if (!roster.has(id)) t.remove(); }
    } else if (t) {
      attach(t, stream);
    }
  }

  // ---------- roster and people ----------
  function onRoster(list) {
    hook.roster = list;
    roster = new Map(list.map((p) => [p.id, p]));
    for (const p of list) if (p.id !== me.id) tileFor(p.id);
    tiles.querySelectorAll('.tile[data-participant]').forEach((t) => {
      const id = t.dataset.participant;
      if (!roster.has(id)) { detach(t); t.remove(); streams.delete(id); }
    });
    const people = $('#people');
    people.replaceChildren(...list.map((p) => {
      const li = el('li', { 'data-participant': p.id },
        el('span', { class: 'name', text: p.name + (p.id === me.id ? ' (you)' : '') }),
        el('span', { class: 'role ' + p.role, text: p.role === 'staff' ? 'Staff' : 'Pupil' }));
      if (isStaff && p.id !== me.id && p.role === 'pupil') li.append(staffControls(p));
      return li;
    }));
  }

  // ---------- staff controls on a pupil ----------
  function staffControls(p) {
    const muted = p.muted || {};
    const box = el('div', { class: 'controls-for' });
    const mic = el('button', { type: 'button', class: 'mute-audio secondary', text: muted.audio ? 'Allow microphone' : 'Mute microphone',
      'aria-label': (muted.audio ? 'Allow microphone of ' : 'Mute microphone of ') + p.name });
    mic.addEventListener('click', () => { mic.disabled = true; send({ type: muted.audio ? 'unmute' : 'mute', id: p.id, kind: 'audio' }); });
    const cam = el('button', { type: 'button', class: 'mute-video secondary', text: muted.video ? 'Allow camera' : 'Stop camera',
      'aria-label': (muted.video ? 'Allow camera of ' : 'Stop camera of ') + p.name });
    cam.addEventListener('click', () => { cam.disabled = true; send({ type: muted.video ? 'unmute' : 'mute', id: p.id, kind: 'video' }); });
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
      $('.remove-confirm', form).disabled = true;
      send({ type: 'remove', id: p.id, reason: reason.value.trim() });
    });
    box.append(el('div', { class: 'row' }, mic, cam, remove), form);
    return box;
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
      el('div', { class: 'who' }, el('strong', { class: 'name' }), el('span', { class: 'email' }), el('span', { class: 'on-roster' })),
      el('div', { class: 'row' },
        el('button', { type: 'button', class: 'admit' }),
        el('button', { type: 'button', class: 'deny secondary', text: 'Deny' })),
      form);
    $('.admit', li).addEventListener('click', (ev) => {
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
      li.querySelectorAll('button').forEach((b) => { b.disabled = true; });
      send({ type: 'deny', id: w.id, reason: text });
    });
    return li;
  }
  function onLobby(waiting) {
    hook.lobby = waiting;
    if (!lobbyList) return;
    const keep = new Set(waiting.map((w) => w.id));
    lobbyList.querySelectorAll(':scope > li').forEach((li) => { if (!keep.has(li.dataset.participant)) li.remove(); });
    waiting.forEach((w, i) => {
      // Reuse an existing item so an open deny form (and what was typed) survives updates.
      let li = lobbyList.querySelector(`:scope > li[data-participant="${CSS.escape(w.id)}"]`) || lobbyItem(w);
      $('.name', li).textContent = w.name;
      $('.email', li).textContent = w.email || '';
      const r = $('.on-roster', li);
      r.textContent = w.on_roster ? 'On the class list' : 'NOT on the class list';
      r.classList.toggle('warning', !w.on_roster);
      $('.admit', li).textContent = 'Admit ' + w.name;
      if (!li.classList.contains('denying')) li.querySelectorAll('button').forEach((b) => { b.disabled = false; });
      if (lobbyList.children[i] !== li) lobbyList.insertBefore(li, lobbyList.children[i] || null);
    });
    show($('#lobby-empty'), waiting.length === 0);
    $('#lobby').classList.toggle('has-waiting', waiting.length > 0);
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
    selfTile.classList.toggle('no-video', !hasLiveVideo(local));
  }
  function toggle(kind) {
    const tr = local ? local.getTracks().filter((t) => t.kind === kind) : [];
    if (!tr.length) return;
    const on = !tr[0].enabled;
    tr.forEach((t) => { t.enabled = on; });
    updateMediaButtons();
  }
  $('#toggle-mic').addEventListener('click', () => toggle('audio'));
  $('#toggle-cam').addEventListener('click', () => toggle('video'));

  function makePC(name) {
    const pc = new RTCPeerConnection({ iceServers });
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate) send({ type: 'candidate', pc: name, candidate: e.candidate.toJSON() });
    });
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'failed' && !terminal) flash('The video connection is not working. Try leaving and joining again.');
    });
    if (name === 'down') pc.addEventListener('track', onTrack);
    pcs[name] = pc;
    return pc;
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

  async function join() {
    joined = true;
    local = await getMedia();
    if (!joined) { stopLocal(); return; } // the session ended while we were asking
    $('video', selfTile).srcObject = local;
    if (local) play($('video', selfTile));
    updateMediaButtons();
    const missing = !local ? 'Your camera and microphone are not available; you can still watch and listen.'
      : !local.getAudioTracks().length ? 'Your microphone is not available; you can still watch and listen.'
        : !local.getVideoTracks().length ? 'Your camera is not available; others can still hear you.' : '';
    const mm = $('#media-message');
    mm.textContent = missing;
    show(mm, !!missing);
    if (!local) return; // nothing to send: only the DOWN connection will be used
    enqueue('up', async () => {
      const pc = makePC('up');
      for (const t of local.getTracks()) pc.addTransceiver(t, { direction: 'sendonly', streams: [local] });
      await pc.setLocalDescription(await pc.createOffer());
      send({ type: 'offer', pc: 'up', sdp: pc.localDescription.sdp });
    });
  }
  // Staff switched a source off: tell the pupil (the gateway drops it anyway).
  function applyMuted(m) {
    const parts = [];
    if (m.audio) parts.push('Your teacher has muted your microphone.');
    if (m.video) parts.push('Your teacher has turned off your camera.');
    const box = $('#muted-message');
    if (box) { box.textContent = parts.join(' '); show(box, parts.length > 0); }
    if (local) {
      local.getAudioTracks().forEach((t) => { if (m.audio) t.enabled = false; });
      local.getVideoTracks().forEach((t) => { if (m.video) t.enabled = false; });
      updateMediaButtons();
    }
    const mic = $('#toggle-mic'); const cam = $('#toggle-cam');
    if (mic && m.audio) mic.disabled = true;
    if (cam && m.video) cam.disabled = true;
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
  function onAnswer(name, sdp) {
    enqueue(name, async () => {
      if (pcs[name] && pcs[name].signalingState === 'have-local-offer') await setRemote(name, { type: 'answer', sdp });
    });
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
    for (const name of ['up', 'down']) {
      if (pcs[name]) pcs[name].close();
      pcs[name] = null;
      pending[name] = [];
    }
    stopLocal();
    $('video', selfTile).srcObject = null;
    streams.clear();
    tiles.querySelectorAll('.tile[data-participant]').forEach((t) => { detach(t); t.remove(); });
    updateMediaButtons();
  }

  // ---------- terminal notices ----------
  const NOTICES = {
    denied: ['You have not been let in', 'Ask your teacher if you think this is a mistake.'],
    removed: ['You have been removed from the lesson', 'You cannot join this lesson again.'],
    ended: ['The lesson has ended', 'Thank you for joining.'],
    left: ['You have left the lesson', 'You can join again if you need to.'],
    lost: ['Connection lost', 'Check that you are connected to the internet, then try again.'],
  };
  function finish(kind, banner, reason) {
    terminal = true;
    if (kind !== 'denied') final = true;
    teardown();
    room.dataset.phase = kind;
    const [title, text] = NOTICES[kind];
    $('#notice-title').textContent = banner || title; // the server's words win
    $('#notice-text').textContent = text;
    const r = $('#notice-reason');
    r.textContent = reason ? 'Reason: ' + reason : '';
    show(r, !!reason);
    const retry = $('#retry');
    retry.textContent = kind === 'left' ? 'Join again' : 'Try again';
    show(retry, kind === 'lost' || kind === 'left');
    show($('#room-ui'), false);
    show($('#banner-area'), false);
    show($('#recording-indicator'), false);
    show($('#notice'), true);
    $('#notice').className = 'notice-' + kind;
    $('#notice-title').focus();
    if (final && ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
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
  if (ackBtn) ackBtn.addEventListener('click', () => { ackBtn.disabled = true; send({ type: 'ack_recording_notice' }); });
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
    if (!isStaff) { show($('#chat-form'), on); show($('#chat-off'), !on); }
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

  // ---------- server messages ----------
  function onState(s) {
    hook.state = s;
    if (final || (terminal && room.dataset.phase === s.phase)) return;
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
    }
    setLocked(s.locked);
    applyMuted(s.muted || {});
    applyChatAllowed(s.chat_pupils !== false);
    if (s.phase === 'admitted' && !joined) join();
  }
  const handlers = {
    welcome(m) {
      me = m.you || me;
      hook.you = me;
      iceServers = Array.isArray(m.ice_servers) ? m.ice_servers : [];
      $('figcaption', selfTile).textContent = `You (${me.name})`;
    },
    state: onState,
    roster: (m) => onRoster(m.participants || []),
    lobby: (m) => onLobby(m.waiting || []),
    offer: (m) => onOffer(m.pc, m.sdp),
    answer: (m) => onAnswer(m.pc, m.sdp),
    candidate: (m) => onCandidate(m.pc, m.candidate),
    error(m) {
      flash(m.message || 'Something went wrong.');
      // Let staff try again: re-enable buttons disabled while waiting for the server.
      room.querySelectorAll('#lobby-list button, #end-confirm-yes').forEach((b) => { b.disabled = false; });
      room.querySelectorAll('#lobby-list li.denying').forEach((li) => li.classList.remove('denying'));
    },
    ended: (m) => { if (!final) finish('ended', '', m.reason); },
    chat: (m) => addChat(m),
    chat_history: (m) => { if (chatList) { chatList.replaceChildren(); (m.messages || []).forEach(addChat); } },
    chat_deleted: (m) => { const li = chatList && chatList.querySelector(`li[data-message="${CSS.escape(m.id)}"]`); if (li) li.remove(); },
    concern_form: (m) => { if (typeof m.url === 'string' && m.url.startsWith('/')) location.assign(m.url); },
    removed: (m) => { if (!final) finish('removed', '', m.reason); },
  };

  function connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + room.dataset.ws;
    ws = new WebSocket(url);
    ws.addEventListener('message', (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (err) { return; }
      const h = m && handlers[m.type];
      if (!h) return;
      if (final && m.type !== 'state') return;
      try { h(m); } catch (err) { console.error('message', m.type, err); }
    });
    ws.addEventListener('close', () => {
      if (!terminal) finish('lost');
      else if (!final) final = true; // denied and then disconnected: nothing more will come
    });
  }
  // Leaving the page (or it going into the back/forward cache) ends this visit cleanly.
  window.addEventListener('pagehide', () => { if (ws) ws.close(1000); });
  updateMediaButtons();
  connect();
})();
