// The console: reads only the public API (the reference client for integrators).
// Every text that comes from the service or from a file name is set with
// textContent, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const classes = new Map(); // classNum -> { name, color }

function problem(text) {
  const p = $('problem');
  p.textContent = text || '';
  p.hidden = !text;
}

// fetch, with the failure said in words: unreachable, or the status and the detail.
async function api(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) {
    throw new Error(`the service cannot be reached (${e.message})`);
  }
  if (!response.ok) {
    let detail = '';
    try {
      const body = await response.json();
      detail = body.detail || JSON.stringify(body);
    } catch {
      detail = 'no details';
    }
    throw new Error(`${response.status} ${response.statusText}: ${detail}`);
  }
  return response;
}

// Engine ---------------------------------------------------------------------------
function showHealth(h) {
  $('availability').textContent = h.aiAvailability || '?';
  $('availability-error').textContent = h.errorMessage || '';
  $('engine-type').textContent = h.engineType || '–';
  $('precision').textContent = h.precision || '–';
  $('replica').textContent = h.replica ? `· replica ${h.replica}` : '';
}

async function loadHealth() {
  try {
    showHealth(await (await api('/health')).json());
    problem('');
  } catch (e) {
    problem(`Engine status unavailable: ${e.message}`);
  }
}

async function loadClasses() {
  try {
    const list = await (await api('/classes')).json();
    const ul = $('classes');
    ul.replaceChildren();
    for (const c of list) {
      classes.set(c.Id, { name: c.Name, color: c.Color || '#888' });
      const li = document.createElement('li');
      li.textContent = c.Name;
      li.style.background = c.Color || '#888';
      ul.append(li);
    }
  } catch (e) {
    problem(`Classes unavailable: ${e.message}`);
  }
}

function classOf(d) {
  return classes.get(d.classNum) || { name: d.label || `class ${d.classNum}`, color: '#888' };
}

// Try it ---------------------------------------------------------------------------
function threshold() {
  return Number($('threshold').value);
}

function status(text) {
  $('try-status').textContent = text;
}

async function drawPhoto(file, detections) {
  const canvas = $('picture');
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, 900 / bitmap.width);
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  const g = canvas.getContext('2d');
  g.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  g.lineWidth = 2;
  g.font = '13px system-ui, sans-serif';
  for (const d of detections) {
    const { name, color } = classOf(d);
    const w = d.width * canvas.width;
    const h = d.height * canvas.height;
    const x = d.centerX * canvas.width - w / 2;
    const y = d.centerY * canvas.height - h / 2;
    g.strokeStyle = color;
    g.strokeRect(x, y, w, h);
    const label = `${name} ${d.confidence.toFixed(2)}`;
    const tw = g.measureText(label).width + 6;
    g.fillStyle = color;
    g.fillRect(x, Math.max(0, y - 16), tw, 16);
    g.fillStyle = '#fff';
    g.fillText(label, x + 3, Math.max(12, y - 4));
  }
  canvas.dataset.boxes = String(detections.length);
}

function tableOf(detections) {
  const body = $('detections').tBodies[0];
  body.replaceChildren();
  detections.forEach((d, i) => {
    const tr = document.createElement('tr');
    const cells = [i + 1, classOf(d).name, d.confidence.toFixed(3), d.centerX.toFixed(3),
      d.centerY.toFixed(3), d.width.toFixed(3), d.height.toFixed(3)];
    for (const value of cells) {
      const td = document.createElement('td');
      td.textContent = String(value);
      tr.append(td);
    }
    tr.style.color = classOf(d).color;
    body.append(tr);
  });
}

async function detectPhoto(file) {
  status(`Detecting ${file.name}…`);
  const form = new FormData();
  form.append('file', file, file.name);
  form.append('config', JSON.stringify({ probability_threshold: threshold() }));
  try {
    const detections = await (await api('/detect', { method: 'POST', body: form })).json();
    await drawPhoto(file, detections);
    tableOf(detections);
    status(`${detections.length} detection(s) in ${file.name}`);
  } catch (e) {
    status(`${file.name} was not detected: ${e.message}`);
  }
}

function uploadVideo(file) {
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/detect/video');
  // Header values are ASCII: other names travel percent-encoded.
  xhr.setRequestHeader('X-Filename', /^[\x20-\x7e]*$/.test(file.name) ? file.name : encodeURIComponent(file.name));
  xhr.setRequestHeader('X-Config', JSON.stringify({ probability_threshold: threshold() }));
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) status(`Uploading ${file.name}: ${Math.round((100 * e.loaded) / e.total)} %`);
  };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch { body = {}; }
    if (xhr.status >= 200 && xhr.status < 300) {
      status(`${file.name} uploaded as media ${body.mediaId || '?'}; its progress is under Live`);
    } else {
      status(`${file.name} was refused: ${xhr.status} ${body.detail || xhr.statusText}`);
    }
  };
  xhr.onerror = () => status(`${file.name}: the service cannot be reached`);
  xhr.send(file);
}

function take(file) {
  if (!file) return;
  if (file.type.startsWith('video/')) uploadVideo(file);
  else detectPhoto(file);
}

// Live -----------------------------------------------------------------------------
const rows = new Map(); // mediaId -> { progress, status, latest, cancel }

function rowFor(id) {
  let row = rows.get(id);
  if (row) return row;
  const tr = document.createElement('tr');
  tr.dataset.media = id;
  const name = document.createElement('td');
  name.textContent = id;
  const progressCell = document.createElement('td');
  const progress = document.createElement('progress');
  progress.max = 100;
  progress.value = 0;
  progressCell.append(progress);
  const state = document.createElement('td');
  const latest = document.createElement('td');
  const action = document.createElement('td');
  const cancel = document.createElement('button');
  cancel.textContent = 'Cancel';
  cancel.onclick = async () => {
    cancel.disabled = true;
    try {
      await api(`/detect/${encodeURIComponent(id)}`, { method: 'DELETE' });
    } catch (e) {
      state.textContent = `cancel failed: ${e.message}`;
    }
  };
  action.append(cancel);
  tr.append(name, progressCell, state, latest, action);
  $('media').tBodies[0].prepend(tr);
  row = { progress, state, latest, cancel };
  rows.set(id, row);
  return row;
}

function onDetection(event) {
  let d;
  try { d = JSON.parse(event.data); } catch { return; }
  const row = rowFor(d.mediaId);
  row.progress.value = d.mediaPercent;
  row.state.textContent = d.error ? `${d.mediaStatus}: ${d.error}` : d.mediaStatus;
  if (d.annotations && d.annotations.length) {
    const best = Math.max(...d.annotations.map((a) => a.confidence));
    const names = [...new Set(d.annotations.map((a) => classOf(a).name))].join(', ');
    row.latest.textContent = `${d.annotations.length} × ${names} (best ${best.toFixed(2)})`;
  }
  row.cancel.disabled = d.mediaStatus !== 'AIProcessing';
}

function openStream() {
  // EventSource reconnects by itself and sends Last-Event-ID, so nothing is missed.
  const source = new EventSource('/detect/stream');
  source.onopen = () => { $('stream-state').textContent = 'connected'; };
  source.onerror = () => { $('stream-state').textContent = 'reconnecting… (resumes where it stopped)'; };
  source.onmessage = onDetection;
  source.addEventListener('availability', (e) => {
    try { showHealth(JSON.parse(e.data)); } catch { /* a malformed event changes nothing */ }
  });
  source.addEventListener('lagged', (e) => {
    let missed = '?';
    try { missed = JSON.parse(e.data).missed; } catch { /* keep '?' */ }
    $('stream-state').textContent = `connected; ${missed} older event(s) were no longer kept`;
  });
}

// Load -----------------------------------------------------------------------------
let previous = null;

function metric(text, name) {
  let total = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
      seen = true;
    }
  }
  return seen ? total : null;
}

async function loadMetrics() {
  try {
    const text = await (await api('/metrics')).text();
    const now = {
      at: performance.now(),
      requests: metric(text, 'detections_http_requests_total'),
      batchSum: metric(text, 'detections_batch_size_sum'),
      batchCount: metric(text, 'detections_batch_size_count'),
      frames: metric(text, 'detections_video_frames_inferred_total'),
    };
    const inFlight = metric(text, 'detections_active_inferences');
    $('in-flight').textContent = inFlight === null ? '–' : String(inFlight);
    const queued = metric(text, 'detections_batch_queued_views');
    $('queue').textContent = queued === null ? '–' : String(queued);
    if (previous) {
      const seconds = (now.at - previous.at) / 1000;
      const rate = (a, b) => (a === null || b === null ? '–' : ((a - b) / seconds).toFixed(1));
      $('rps').textContent = rate(now.requests, previous.requests);
      $('frames').textContent = rate(now.frames, previous.frames);
      const calls = now.batchCount - previous.batchCount;
      $('batch-fill').textContent = calls > 0 ? ((now.batchSum - previous.batchSum) / calls).toFixed(2) : '–';
    }
    previous = now;
  } catch (e) {
    problem(`Metrics unavailable: ${e.message}`);
  }
}

// Start ----------------------------------------------------------------------------
$('threshold').oninput = () => { $('threshold-value').textContent = threshold().toFixed(2); };
$('file').onchange = (e) => take(e.target.files[0]);
const drop = $('drop');
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  take(e.dataTransfer.files[0]);
};

loadClasses().then(loadHealth);
openStream();
loadMetrics();
setInterval(loadMetrics, 3000);
