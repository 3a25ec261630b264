// Templates: job configurations shared across teams (docs/api.md,
// "Templates"). The featured ones first (what a new user starts from), then
// every template the user may see, searched by words (title, description,
// tags), filtered by tag, sorted by use count, recency or title. Searching,
// filtering and sorting are the server's (GET /api/v2/templates); the
// filter state lives in the URL fragment (#/templates?q=resnet&tag=vision).
import { api, session } from '../api.js';
import { h, clear, errorBox, fmtTime, debounce, uid } from '../ui.js';

export const templateHref = (id) => `#/template/${id.split('~').map(encodeURIComponent).join('~')}`;

const SORTS = [['uses', 'Most used'], ['recent', 'Recently changed'], ['title', 'Title']];

export function visibilityBadge(t) {
  const label = t.visibility === 'groups' ? `groups: ${(t.groups || []).join(', ')}` : t.visibility;
  return h('span', { class: `badge vis-${t.visibility}` }, label);
}

export function tagChips(tags, onClick) {
  return h('span', { class: 'tags' }, (tags || []).map((t) => (onClick
    ? h('button', { type: 'button', class: 'tag', onclick: () => onClick(t), 'aria-label': `Filter by tag ${t}` }, t)
    : h('span', { class: 'tag' }, t))));
}

// One template as a card (featured strip and the result list).
function card(t, onTag) {
  return h('article', { class: 'card tpl-card', dataset: { template: t.id } },
    h('h3', {}, h('a', { href: templateHref(t.id) }, t.title || t.name),
      t.featured ? h('span', { class: 'badge featured', title: 'featured: shown to new users' }, '★ featured') : null),
    h('p', { class: 'muted small' }, `${t.owner} · ${t.useCount} ${t.useCount === 1 ? 'use' : 'uses'} · `,
      visibilityBadge(t), t.image ? h('span', { class: 'mono' }, ` · ${t.image}`) : null),
    t.description ? h('p', { class: 'tpl-desc' }, t.description.length > 240 ? `${t.description.slice(0, 240)}…` : t.description) : null,
    tagChips(t.tags, onTag),
    h('div', { class: 'actions' },
      h('a', { class: 'button primary', href: `${templateHref(t.id)}/submit` }, 'Use'),
      h('a', { class: 'button', href: templateHref(t.id) }, 'Details')));
}

function readState(query) {
  const sort = query.get('sort');
  return {
    q: query.get('q') ?? '',
    tag: query.get('tag') ?? '',
    sort: SORTS.some(([s]) => s === sort) ? sort : 'uses',
    mine: query.get('mine') === '1',
  };
}

function writeState(st) {
  const q = new URLSearchParams();
  if (st.q) q.set('q', st.q);
  if (st.tag) q.set('tag', st.tag);
  if (st.sort !== 'uses') q.set('sort', st.sort);
  if (st.mine) q.set('mine', '1');
  const s = q.toString();
  history.replaceState(null, '', `#/templates${s ? `?${s}` : ''}`);
}

export async function render(main, { query }) {
  const st = readState(query);
  const featured = h('div', { class: 'cards tpl-cards' });
  const results = h('div', { class: 'cards tpl-cards', id: 'tpl-results', 'aria-live': 'polite' });
  const tagBox = h('div', { class: 'tags tag-filter', 'aria-label': 'Tags' });
  const count = h('p', { class: 'muted', id: 'tpl-count' });
  const search = h('input', { id: uid('flt'), name: 'q', type: 'search', value: st.q, placeholder: 'words in title, description or tags' });
  const sortSel = h('select', { id: uid('flt'), name: 'sort' }, SORTS.map(([v, l]) => h('option', { value: v }, l)));
  sortSel.value = st.sort;
  const mine = h('input', { type: 'checkbox', id: uid('flt'), name: 'mine', checked: st.mine });
  const label = (el, text) => h('label', { class: 'filter', for: el.id }, h('span', {}, text), el);
  const featuredSection = h('section', { 'aria-labelledby': 'tpl-featured' },
    h('h2', { id: 'tpl-featured' }, 'Featured'), featured);
  main.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Templates'),
      h('div', { class: 'actions' }, h('a', { class: 'button primary', href: '#/templates/publish' }, 'Publish a template'))),
    h('p', { class: 'muted' }, 'Job configurations shared by your colleagues: start from one with your own parameters, or publish your own for your groups or everyone.'),
    featuredSection,
    h('section', { 'aria-labelledby': 'tpl-all' },
      h('h2', { id: 'tpl-all' }, 'All templates'),
      h('div', { class: 'filters' }, label(search, 'Search'), label(sortSel, 'Sort by'),
        h('label', { class: 'check', for: mine.id }, mine, ' Only mine')),
      tagBox, count, results));

  let seq = 0;
  const setTag = (t) => { st.tag = st.tag === t ? '' : t; reload(); };
  async function reload() {
    writeState(st);
    const my = ++seq;
    try {
      const ans = await api.templates({ keyword: st.q, tag: st.tag, sort: st.sort, owner: st.mine ? session.user : '', limit: 200 });
      if (my !== seq) return;
      const items = ans.items || [];
      count.textContent = `${ans.totalCount} template${ans.totalCount === 1 ? '' : 's'}${st.tag ? ` tagged ${st.tag}` : ''}`;
      clear(results, items.length ? items.map((t) => card(t, setTag))
        : h('p', { class: 'muted empty' }, 'No template matches. ', h('a', { href: '#/templates/publish' }, 'Publish one'), '.'));
      const tags = Object.entries(ans.tags || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 30);
      clear(tagBox, tags.map(([t, n]) => h('button', {
        type: 'button', class: `tag${st.tag === t ? ' active' : ''}`, 'aria-pressed': String(st.tag === t), onclick: () => setTag(t),
      }, `${t} (${n})`)));
    } catch (e) {
      if (my === seq) clear(results, errorBox(e));
    }
  }
  search.addEventListener('input', debounce(() => { st.q = search.value.trim(); reload(); }, 300));
  sortSel.addEventListener('change', () => { st.sort = sortSel.value; reload(); });
  mine.addEventListener('change', () => { st.mine = mine.checked; reload(); });

  const [f] = await Promise.allSettled([api.templates({ featured: 'true', limit: 12 }), reload()]);
  if (f.status === 'fulfilled') {
    const items = f.value.items || [];
    if (items.length) clear(featured, items.map((t) => card(t, setTag)));
    else featuredSection.remove();
  } else {
    clear(featured, errorBox(f.reason));
  }
  return null;
}

// For the dashboard: the featured templates as a short list (new users start here).
export function featuredList(items) {
  if (!items.length) return h('p', { class: 'muted' }, 'No featured templates. ', h('a', { href: '#/templates' }, 'Browse templates'), '.');
  return h('ul', { class: 'tpl-list' }, items.map((t) => h('li', {},
    h('a', { href: templateHref(t.id) }, t.title || t.name), ' ',
    h('span', { class: 'muted' }, `${t.useCount} ${t.useCount === 1 ? 'use' : 'uses'} · updated ${fmtTime(t.updatedTime)}`))));
}
