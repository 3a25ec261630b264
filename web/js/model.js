// model.js - reads the API's node and virtual-cluster answers into the few
// numbers the pages show. Field names follow docs/api.md; older or
// alternative spellings are accepted so a page never shows "undefined".

const num = (...xs) => { for (const x of xs) if (typeof x === 'number' && !Number.isNaN(x)) return x; return 0; };

// GPUs of a VC: {used, guaranteed, total}.
export function vcGpus(vc) {
  return {
    used: num(vc?.resourcesUsed?.GPUs, vc?.resourcesUsed?.gpu),
    guaranteed: num(vc?.resourcesGuaranteed?.GPUs, vc?.resourcesGuaranteed?.gpu),
    total: num(vc?.resourcesTotal?.GPUs, vc?.resourcesTotal?.gpu),
  };
}

// The VC list as [{name, ...vc}], from a {name: vc} map or an array.
export function vcList(answer) {
  if (Array.isArray(answer)) return answer.map((v) => ({ ...v, name: v.name ?? v.vc ?? '' }));
  return Object.entries(answer || {}).map(([name, v]) => ({ ...v, name }));
}

// A Kubernetes-shaped node (GET /api/v2/cluster/nodes) -> the flat shape.
function fromKube(n) {
  const st = n.status || {};
  const ready = (st.conditions || []).find((c) => c.type === 'Ready');
  const labels = n.metadata?.labels || {};
  return {
    name: n.metadata?.name,
    ip: (st.addresses || []).find((a) => a.type === 'InternalIP')?.address ?? '',
    gpuTotal: Number(st.capacity?.['nvidia.com/gpu'] ?? 0),
    gpuUsed: Number(n.pai?.usedGpus ?? 0),
    gpuModel: labels['pai/sku'] ?? '',
    virtualCluster: labels['pai/vc'] ?? '',
    state: ready ? (ready.status !== 'True' ? 'not ready'
      : n.pai?.badGpus?.length ? `bad GPU ${n.pai.badGpus.join(',')}` : 'ready') : 'unknown',
    healthy: ready?.status === 'True' && !n.pai?.badGpus?.length,
    badGpus: n.pai?.badGpus ?? [],
    cpu: st.capacity?.cpu,
    memory: st.capacity?.memory,
    tasks: n.pai?.tasks ?? st.nodeInfo?.tasks,
    gpuUtilization: n.pai?.gpuUtilization,
  };
}

// One node: {name, ip, state, healthy, gpuModel, gpus, used, free, util, cpu, memoryMB, vc}.
export function normNode(raw) {
  const n = raw && raw.metadata && raw.status ? fromKube(raw) : raw;
  const gpus = num(n.gpuTotal, n.gpus?.total, n.totalGpus, Array.isArray(n.gpus) ? n.gpus.length : undefined, n.gpuCount, n.gpus);
  const used = num(n.gpuUsed, n.gpus?.used, n.usedGpus, Array.isArray(n.gpus) ? n.gpus.filter((g) => g.used || g.busy || g.job).length : undefined);
  const free = typeof n.gpuFree === 'number' ? n.gpuFree : Math.max(0, gpus - used);
  const utils = Array.isArray(n.gpus) ? n.gpus.map((g) => g.utilization).filter((u) => typeof u === 'number') : [];
  const util = typeof n.gpuUtilization === 'number' ? n.gpuUtilization
    : utils.length ? utils.reduce((a, b) => a + b, 0) / utils.length : null;
  const state = String(n.state ?? n.status ?? (n.healthy === false ? 'unhealthy' : 'ready'));
  return {
    name: n.name ?? n.node ?? n.hostname ?? '?',
    ip: n.ip ?? n.address ?? '',
    state,
    healthy: n.healthy ?? /^(ready|up|healthy|ok|online)$/i.test(state),
    gpuModel: n.gpuModel ?? n.gpuType ?? (Array.isArray(n.gpus) ? n.gpus[0]?.model : undefined) ?? n.skuType ?? '',
    gpus, used, free, util,
    cpu: n.cpu ?? n.cpus ?? n.cpuTotal,
    memoryMB: n.memoryMB ?? n.memoryTotalMB,
    vc: n.virtualCluster ?? n.vc ?? '',
    lastHeartbeat: n.lastHeartbeat ?? n.heartbeatTime,
  };
}

export function nodeList(answer) {
  const list = Array.isArray(answer) ? answer : answer?.nodes ?? answer?.items ?? answer?.data ?? [];
  return list.map(normNode);
}
