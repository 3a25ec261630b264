// Job detail: state, waiting reason, retries, exit code with its phrase,
// reason and solution, attempts, the per-task table and each task's
// stdout/stderr (tail or full, follow); stop, clone, tag, delete; the job's
// GPU utilization over time.
import { api, session } from '../api.js';
import { h, clear, errorBox, fmtTime, fmtDuration, span, stateBadge, toast, confirmDialog, promptDialog } from '../ui.js';
import { lineChart } from '../charts.js';
import { startSampling, jobSeries, recordJobGpus, jobGpuSeries, gpuCount, loadJobHistory } from '../metrics.js';

const REFRESH_MS = 5000;
const FOLLOW_MS = 2000;
const TAIL_BYTES = 64 * 1024;
const ACTIVE = new Set(['WAITING', 'RUNNING', 'STOPPING']);
const FINISHED = new Set(['SUCCEEDED', 'FAILED', 'STOPPED']);

const dl = (pairs) => h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '–')]));

function exitInfo(js) {
  const spec = js.appExitSpec;
  if (js.appExitCode === null || js.appExitCode === undefined) return null;
  return h('section', { class: `card exit ${js.appExitCode === 0 ? 'ok' : 'bad'}`, 'aria-labelledby': 'j-exit' },
    h('h2', { id: 'j-exit' }, `Exit code ${js.appExitCode}`, spec?.phrase ? ` · ${spec.phrase}` : ''),
    dl([
      spec?.type && ['Type', spec.type],
      spec?.reason && ['Reason', spec.reason],
      spec?.solution?.length && ['Solution', h('ul', {}, spec.solution.map((s) => h('li', {}, s)))],
      js.appExitDiagnostics && ['Diagnostics', h('pre', { class: 'diag' }, js.appExitDiagnostics)],
      js.appExitTriggerTaskRoleName && ['Triggered by', `${js.appExitTriggerTaskRoleName}[${js.appExitTriggerTaskIndex ?? '?'}]`],
    ]));
}

function waitingReason(js) {
  if (js.state !== 'WAITING') return null;
  return js.waitingReason || js.appExitDiagnostics || (js.retryDelayTime ? `retrying in ${fmtDuration(js.retryDelayTime)}` : js.subState);
}

function portsText(p) {
  if (!p || typeof p !== 'object') return '–';
  const parts = Object.entries(p).map(([k, v]) => `${k}:${Array.isArray(v) ? v.join('/') : v}`);
  return parts.length ? parts.join(', ') : '–';
}

export async function render(main, { params }) {
  const [user, name] = params;
  const key = `${user}~${name}`;
  let stopped = false;
  let timer = 0;
  let followTimer = 0;
  let detail = null;
  let logSel = null; // {role, index, attempt, stream}

  const head = h('div', { class: 'page-head' });
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const tasksBox = h('div', {});
  const attemptsBox = h('div', {});
  const eventsBox = h('div', {});
  const chartBox = h('div', {});
  const sshBox = h('section', { class: 'card ssh', 'aria-labelledby': 'j-ssh', hidden: true });
  const logTitle = h('h2', { id: 'j-logs' }, 'Logs');
  const logPre = h('pre', { class: 'log', tabindex: '0', 'aria-label': 'Log output' }, 'Choose a task’s stdout or stderr above.');
  const follow = h('input', { type: 'checkbox', id: 'log-follow' });
  const full = h('input', { type: 'checkbox', id: 'log-full' });
  follow.addEventListener('change', () => { if (logSel) loadLog(); });
  full.addEventListener('change', () => { if (logSel) loadLog(); });
  const logBox = h('section', { class: 'card logs', 'aria-labelledby': 'j-logs' }, logTitle,
    h('div', { class: 'toolbar' },
      h('label', { class: 'check', for: 'log-follow' }, follow, ' Follow'),
      h('label', { class: 'check', for: 'log-full' }, full, ' Whole log (not only the last 64 KiB)')),
    logPre);
  const origin = h('p', { class: 'muted', id: 'j-template' });
  main.append(head, origin, body,
    h('section', { class: 'card', 'aria-labelledby': 'j-tasks' }, h('h2', { id: 'j-tasks' }, 'Tasks'), tasksBox),
    sshBox,
    logBox,
    h('section', { class: 'card', 'aria-labelledby': 'j-attempts' }, h('h2', { id: 'j-attempts' }, 'Attempts'), attemptsBox),
    h('section', { class: 'card', 'aria-labelledby': 'j-events' }, h('h2', { id: 'j-events' }, 'Events'), eventsBox),
    h('section', { class: 'card', 'aria-labelledby': 'j-gpu' }, h('h2', { id: 'j-gpu' }, 'GPU utilization'), chartBox));

  const act = (label, cls, fn) => h('button', { type: 'button', class: cls, onclick: fn }, label);

  // A job submitted from a template records it (extras.template in its config);
  // one that asks for the ssh runtime plugin gets the SSH card.
  let hasSsh = false;
  api.jobConfig(user, name).then((text) => {
    const extras = typeof text === 'string' && window.jsyaml ? window.jsyaml.load(text)?.extras : null;
    const plugins = extras?.['com.microsoft.pai.runtimeplugin'];
    hasSsh = Array.isArray(plugins) && plugins.some((p) => p?.plugin === 'ssh');
    if (hasSsh && detail && !stopped) drawSsh(detail.jobStatus || {});
    const tpl = extras?.template;
    if (tpl?.id && !stopped) {
      clear(origin, 'Submitted from the template ',
        h('a', { href: `#/template/${tpl.id.split('~').map(encodeURIComponent).join('~')}` }, tpl.id), '.');
    }
  }).catch(() => {});

  async function doStop() {
    if (!(await confirmDialog(`Stop ${name}?`, 'Stop'))) return;
    try { await api.stopJob(user, name); toast(`Stopping ${name}.`); load(); } catch (e) { toast(e.message, 'error'); }
  }
  async function doDelete() {
    if (!(await confirmDialog(`Delete ${name} and its records? This cannot be undone.`, 'Delete'))) return;
    try { await api.deleteJob(user, name); toast(`Deleted ${name}.`); location.hash = '#/jobs'; } catch (e) { toast(e.message, 'error'); }
  }
  async function doTag() {
    const tag = await promptDialog('Tag to add');
    if (!tag || !tag.trim()) return;
    try { await api.addTag(user, name, tag.trim()); load(); } catch (e) { toast(e.message, 'error'); }
  }
  async function untag(tag) {
    try { await api.removeTag(user, name, tag); load(); } catch (e) { toast(e.message, 'error'); }
  }

  function drawHead(js, tags) {
    const mine = session.admin || session.user === user;
    clear(head,
      h('h1', {}, name, ' ', stateBadge(js.state)),
      h('div', { class: 'actions' },
        mine && ACTIVE.has(js.state) && js.state !== 'STOPPING' ? act('Stop', 'danger', doStop) : null,
        h('a', { class: 'button', href: `#/submit?clone=${encodeURIComponent(key)}` }, 'Clone'),
        h('a', { class: 'button', href: `#/templates/publish?job=${encodeURIComponent(key)}` }, 'Publish as template'),
        mine ? act('Add tag', '', doTag) : null,
        mine && FINISHED.has(js.state) ? act('Delete', 'danger', doDelete) : null),
      h('div', { class: 'tags', 'aria-label': 'Tags' }, (tags || []).map((t) => h('span', { class: 'tag' }, t,
        mine ? h('button', { type: 'button', class: 'link x', 'aria-label': `Remove tag ${t}`, onclick: () => untag(t) }, '×') : null))));
  }

  function drawSummary(d) {
    const js = d.jobStatus || {};
    const rd = js.retryDetails;
    clear(body, h('section', { class: 'card', 'aria-label': 'Summary' }, dl([
      ['User', js.username || user],
      ['Virtual cluster', js.virtualCluster],
      ['State', [stateBadge(js.state), js.subState ? ` ${js.subState}` : '']],
      waitingReason(js) && ['Waiting because', waitingReason(js)],
      ['Retries', `${js.retries ?? 0}${rd ? ` (user ${rd.user ?? 0}, platform ${rd.platform ?? 0}, resource ${rd.resource ?? 0})` : ''}`],
      ['Submitted', fmtTime(js.submissionTime)],
      ['Started', fmtTime(js.launchedTime || js.appLaunchedTime)],
      ['Completed', fmtTime(js.completedTime)],
      ['Duration', fmtDuration(span(js.launchedTime || js.createdTime, js.completedTime))],
      ['Attempt', js.attemptId ?? 0],
    ])), exitInfo(js));
  }

  function logButtons(role, t) {
    const b = (stream) => h('button', { type: 'button', class: 'small', 'aria-label': `${stream} of ${role}[${t.taskIndex}]`,
      onclick: () => { logSel = { role, index: t.taskIndex, attempt: t.attemptId ?? 0, stream }; loadLog(); logPre.focus(); } }, stream);
    return [b('stdout'), ' ', b('stderr')];
  }

  function drawTasks(d) {
    const roles = Object.entries(d.taskRoles || {});
    if (roles.length === 0) { clear(tasksBox, h('p', { class: 'muted' }, 'No tasks yet.')); return; }
    clear(tasksBox, roles.map(([role, r]) => h('div', { class: 'table-wrap' }, h('table', { class: 'grid tasks' },
      h('caption', {}, `${role} (${(r.taskStatuses || []).length})`),
      h('thead', {}, h('tr', {}, ['#', 'State', 'Node', 'IP', 'Ports', 'GPUs', 'Duration', 'Exit code', 'Retries', 'Logs'].map((c) => h('th', {}, c)))),
      h('tbody', {}, (r.taskStatuses || []).map((t) => h('tr', { dataset: { role, index: t.taskIndex } },
        h('td', {}, t.taskIndex), h('td', {}, stateBadge(t.taskState)),
        h('td', {}, t.containerNodeName || '–'), h('td', {}, t.containerIp || '–'),
        h('td', {}, portsText(t.containerPorts)), h('td', {}, t.containerGpus ?? '–'),
        h('td', {}, fmtDuration(span(t.launchedTime || t.currentAttemptLaunchedTime, t.completedTime))),
        h('td', { title: t.containerExitSpec?.reason || '' }, t.containerExitCode ?? '–', t.containerExitSpec?.phrase ? ` ${t.containerExitSpec.phrase}` : ''),
        h('td', {}, t.retries ?? 0), h('td', { class: 'nowrap' }, logButtons(role, t)))))))));
  }

  // The ssh runtime plugin (docs/ssh.md): a copyable command per running
  // task, for the owner and admins; hidden for jobs without the plugin.
  async function drawSsh(js) {
    const mine = session.admin || session.user === user;
    if (!hasSsh || !mine || js.state !== 'RUNNING') { sshBox.hidden = true; return; }
    let info;
    try { info = await api.jobSsh(user, name); } catch (e) { sshBox.hidden = true; return; }
    if (stopped) return;
    const copy = (text) => h('button', { type: 'button', class: 'small', 'aria-label': `Copy ${text}`,
      onclick: () => navigator.clipboard?.writeText(text).then(() => toast('Copied.'), () => toast('Select and copy the command.', 'error')) }, 'Copy');
    const rows = (info.containers || []).map((c) => {
      const cli = `pai ssh ${key} ${c.taskRoleName} ${c.taskIndex}`;
      const raw = `ssh -p ${c.sshPort} ${c.sshUser}@${c.sshIp}`;
      return h('tr', { dataset: { role: c.taskRoleName, index: c.taskIndex } },
        h('td', {}, `${c.taskRoleName}[${c.taskIndex}]`),
        h('td', {}, h('code', { class: 'cmd' }, cli), ' ', copy(cli)),
        h('td', {}, h('code', { class: 'cmd' }, raw), ' ', copy(raw)));
    });
    clear(sshBox, h('h2', { id: 'j-ssh' }, 'SSH'),
      rows.length === 0 ? h('p', { class: 'muted' }, 'No task is running yet.') : h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
        h('thead', {}, h('tr', {}, ['Task', 'With the pai CLI (uses the job’s key)', 'With ssh (your profile’s key)'].map((c) => h('th', {}, c)))),
        h('tbody', {}, rows))),
      h('p', { class: 'muted' }, 'pai ssh checks the task’s host key; with plain ssh, add the job’s known_hosts lines (GET …/ssh) first.'));
    sshBox.hidden = false;
  }

  async function drawAttempts() {
    try {
      const list = await api.jobAttempts(user, name);
      const arr = Array.isArray(list) ? list : list?.data ?? [];
      if (stopped) return;
      clear(attemptsBox, arr.length === 0 ? h('p', { class: 'muted' }, 'No attempts yet.') : h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
        h('thead', {}, h('tr', {}, ['Attempt', 'State', 'Created', 'Completed', 'Exit code', 'Exit phrase'].map((c) => h('th', {}, c)))),
        h('tbody', {}, arr.map((a) => h('tr', {},
          h('td', {}, a.attemptIndex ?? a.attemptId ?? '–'), h('td', {}, stateBadge(a.attemptState || a.state)),
          h('td', {}, fmtTime(a.attemptStartedTime || a.appCreatedTime || a.createdTime)), h('td', {}, fmtTime(a.attemptCompletedTime || a.appCompletedTime || a.completedTime)),
          h('td', {}, a.appExitCode ?? a.exitCode ?? '–'), h('td', {}, a.appExitSpec?.phrase || a.exitPhrase || '–')))))));
    } catch (e) {
      if (!stopped) clear(attemptsBox, errorBox(e));
    }
  }

  async function drawEvents() {
    try {
      const r = await api.jobEvents(user, name);
      const arr = Array.isArray(r) ? r : r?.data ?? [];
      if (stopped) return;
      const when = (t) => (typeof t === 'string' ? fmtTime(Date.parse(t)) : fmtTime(t));
      clear(eventsBox, arr.length === 0 ? h('p', { class: 'muted' }, 'No events.') : h('div', { class: 'table-wrap' }, h('table', { class: 'grid events' },
        h('thead', {}, h('tr', {}, ['Last seen', 'Type', 'Reason', 'Message', 'Count'].map((c) => h('th', {}, c)))),
        h('tbody', {}, arr.map((e) => h('tr', {},
          h('td', { class: 'nowrap' }, when(e.lastTimestamp || e.firstTimestamp)), h('td', {}, e.type || '–'),
          h('td', {}, e.reason || '–'), h('td', {}, e.message || '–'), h('td', { class: 'num' }, e.count ?? 1)))))));
    } catch (e) {
      if (!stopped) clear(eventsBox, e.status === 404 ? h('p', { class: 'muted' }, 'No events.') : errorBox(e));
    }
  }

  async function loadLog() {
    clearTimeout(followTimer);
    const sel = logSel;
    if (!sel || stopped) return;
    logTitle.textContent = `Logs · ${sel.role}[${sel.index}] ${sel.stream}`;
    try {
      const info = await api.taskLogs(user, name, detail?.jobStatus?.attemptId ?? 0, sel.role, sel.index, sel.attempt, !full.checked);
      const loc = (info?.locations || []).find((l) => l.name === sel.stream);
      if (!loc) throw new Error(`no ${sel.stream} log for this task yet`);
      let text = await api.logContent(loc.uri);
      if (typeof text !== 'string') text = JSON.stringify(text, null, 2);
      if (sel !== logSel || stopped) return;
      if (!full.checked && text.length > TAIL_BYTES) text = text.slice(-TAIL_BYTES);
      const atEnd = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 20;
      logPre.textContent = text || '(empty)';
      if (follow.checked || atEnd) logPre.scrollTop = logPre.scrollHeight;
      logPre.dataset.loaded = sel.stream;
    } catch (e) {
      if (sel === logSel) logPre.textContent = `Could not read the log: ${e.message}`;
    }
    if (follow.checked && sel === logSel && !stopped) followTimer = setTimeout(loadLog, FOLLOW_MS);
  }

  async function load() {
    clearTimeout(timer);
    try {
      const d = await api.job(user, name);
      if (stopped) return;
      detail = d;
      const js = d.jobStatus || {};
      drawHead(js, d.tags);
      drawSummary(d);
      drawTasks(d);
      drawSsh(js);
      drawAttempts();
      drawEvents();
      main.dataset.state = js.state || '';
      const held = Object.values(d.taskRoles || {}).flatMap((r) => r.taskStatuses || [])
        .filter((t) => t.taskState === 'RUNNING').reduce((a, t) => a + gpuCount(t.containerGpus), 0);
      if (!FINISHED.has(js.state) || jobGpuSeries(key).length) recordJobGpus(key, Date.now(), held);
      if (!FINISHED.has(js.state)) timer = setTimeout(load, REFRESH_MS);
    } catch (e) {
      if (stopped) return;
      clear(head, h('h1', {}, name));
      clear(body, errorBox(e));
      if (e.status !== 404) timer = setTimeout(load, REFRESH_MS);
    }
  }

  await load();
  if (detail && !stopped) await loadJobHistory(user, name); // the server's history first
  // Utilization when the nodes export it; the GPUs the job holds always.
  const drawChart = () => {
    const util = jobSeries(key);
    const held = jobGpuSeries(key);
    clear(chartBox,
      util.length ? lineChart({ title: `Mean GPU utilization of ${name}, %`, series: [{ name: 'utilization', points: util }] }) : null,
      lineChart({ title: `GPUs held by ${name}'s running tasks (server history, then live)`, series: [{ name: 'GPUs', points: held }], yMax: Math.max(1, ...held.map((p) => p[1])), unit: '' }));
  };
  drawChart();
  const stopSampling = startSampling(drawChart, { history: false });
  return () => { stopped = true; clearTimeout(timer); clearTimeout(followTimer); stopSampling(); };
}
