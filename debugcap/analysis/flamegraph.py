"""Flame graphs (self-contained HTML) and speedscope export of pprof profiles.

Callers: :mod:`debugcap.analysis.report`. The JavaScript is our own (no code
from flamegraph.pl, which is CDDL); the page loads nothing from the network.
speedscope's file format: shared/research/pprof.md §5.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from debugcap.analysis import pprof

# Frames narrower than this share of the total are left out: they are
# invisible anyway and large profiles expand to ~425k tree nodes (research §5).
MIN_FRACTION = 0.001

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
_SPEEDSCOPE_UNITS = {"nanoseconds": "nanoseconds", "bytes": "bytes", "microseconds": "microseconds",
                     "milliseconds": "milliseconds", "seconds": "seconds"}


@dataclass
class Flame:
    """One flame graph: a pruned call tree, root first. ``diff`` trees carry base values too."""

    title: str
    unit: str
    total: int
    names: list[str]
    root: list[Any]  # [name index, value, base value, [children]]
    diff: bool = False


def _tree(new: Counter[pprof.NodeStack], base: Counter[pprof.NodeStack] | None, names: list[str],
          title: str, unit: str) -> Flame:
    # Node: [name, value, base, children-dict]; the dicts become lists when pruning.
    root: list[Any] = [-1, 0, 0, {}]
    sides: list[tuple[int, Counter[pprof.NodeStack]]] = [(1, new), (2, base or Counter())]
    for slot, stacks in sides:
        for st, w in stacks.items():
            w = abs(w)
            node = root
            node[slot] += w
            for nid in reversed(st):
                children = node[3]
                child = children.get(nid)
                if child is None:
                    child = children[nid] = [nid, 0, 0, {}]
                child[slot] += w
                node = child
    width = root[1] + root[2]
    limit = width * MIN_FRACTION
    used: dict[int, int] = {}

    def prune(node: list[Any]) -> list[Any]:
        kids = [prune(c) for c in node[3].values() if c[1] + c[2] >= limit]
        kids.sort(key=lambda c: names[c[0]])
        nid = node[0]
        if nid >= 0 and nid not in used:
            used[nid] = len(used)
        return [used.get(nid, -1), node[1], node[2], kids]

    pruned = prune(root)
    table = [""] * len(used)
    for nid, i in used.items():
        table[i] = names[nid]
    return Flame(title=title, unit=unit, total=root[1] if base is None else root[2], names=table,
                 root=pruned, diff=base is not None)


def profile_flame(profile: pprof.Profile, title: str, index: str | None = None) -> Flame:
    idx = pprof.sample_index(profile, index)
    if idx < 0:
        return Flame(title=title, unit="", total=0, names=[], root=[-1, 0, 0, []])
    stacks = pprof.node_stacks(profile, idx)
    return _tree(stacks, None, profile.node_names, f"{title} ({profile.sample_types[idx].type})",
                 profile.sample_types[idx].unit)


def diff_flame(base: pprof.Profile, new: pprof.Profile, title: str, index: str | None = None) -> Flame:
    bi, ni = pprof.compatible_index(base, new, index)
    names: dict[str, int] = {}
    a = pprof.node_stacks(new, ni, names)
    b = pprof.node_stacks(base, bi, names)
    table = [""] * len(names)
    for n, i in names.items():
        table[i] = n
    return _tree(a, b, table, f"{title} ({new.sample_types[ni].type}, red = grew)",
                 new.sample_types[ni].unit)


def speedscope(profiles: list[tuple[str, pprof.Profile]], name: str, exporter: str) -> dict[str, Any]:
    """speedscope JSON: one ``sampled`` profile per (profile, sample type), positive weights only."""
    frames: list[dict[str, Any]] = []
    frame_ids: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for title, prof in profiles:
        remap = []
        for nid, fname in enumerate(prof.node_names):
            fid = frame_ids.get(fname)
            if fid is None:
                fid = frame_ids[fname] = len(frames)
                frame: dict[str, Any] = {"name": fname}
                if prof.node_files[nid]:
                    frame["file"] = prof.node_files[nid]
                frames.append(frame)
            remap.append(fid)
        for idx, st in enumerate(prof.sample_types):
            samples: list[list[int]] = []
            weights: list[int] = []
            for stack, w in pprof.node_stacks(prof, idx).items():
                # speedscope throws on weights <= 0 (delta and diff profiles have them).
                if w > 0 and stack:
                    samples.append([remap[n] for n in reversed(stack)])
                    weights.append(w)
            if not weights:
                continue
            out.append({"type": "sampled", "name": f"{title} {st.type} ({st.unit})",
                        "unit": _SPEEDSCOPE_UNITS.get(st.unit, "none"), "startValue": 0,
                        "endValue": sum(weights), "samples": samples, "weights": weights})
    return {"$schema": SPEEDSCOPE_SCHEMA, "shared": {"frames": frames}, "profiles": out,
            "name": name, "activeProfileIndex": 0, "exporter": exporter}


def flame_json(flame: Flame) -> dict[str, Any]:
    return {"title": flame.title, "unit": flame.unit, "total": flame.total, "names": flame.names,
            "root": flame.root, "diff": flame.diff}


def _script_json(obj: Any) -> str:
    # Inside <script>, "</" would end the element early; "<\/" is the same JSON string.
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


_CSS = """
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:6px 0}
td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #eee}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.sev-high{color:#b00020;font-weight:bold}.sev-medium{color:#b26a00}.sev-low{color:#555}
.flame{position:relative;overflow:hidden;border:1px solid #ddd;margin:4px 0}
.flame div{position:absolute;height:17px;box-sizing:border-box;border-right:1px solid #fff;
 border-bottom:1px solid #fff;overflow:hidden;white-space:nowrap;font:11px/17px monospace;
 padding-left:2px;cursor:pointer}
.flame div.dim{opacity:.45}.flame div.hit{background:#e600e6!important;color:#fff}
.bar{font:12px monospace;min-height:16px;color:#333}
.tools input{font:12px monospace;width:260px}
"""

_JS = r"""
(function(){
function colour(name, n, flame, maxDelta){
  if(flame.diff){
    var d=n[1]-n[2], t=maxDelta? Math.min(1,Math.abs(d)/maxDelta):0;
    var c=Math.round(235-150*t);
    return d>0?'rgb(255,'+c+','+c+')':d<0?'rgb('+c+','+c+',255)':'rgb(235,235,235)';
  }
  var h=0;for(var i=0;i<name.length;i++){h=(h*31+name.charCodeAt(i))|0;}
  h=Math.abs(h);return 'hsl('+(h%50)+','+(60+h%30)+'%,'+(55+h%15)+'%)';
}
function fmt(v,unit){
  var a=Math.abs(v),s=v<0?'-':'';
  if(unit==='nanoseconds'){if(a>=1e9)return s+(a/1e9).toFixed(2)+'s';
    if(a>=1e6)return s+(a/1e6).toFixed(2)+'ms';
    if(a>=1e3)return s+(a/1e3).toFixed(2)+'us';return s+a+'ns';}
  if(unit==='bytes'){var u=['B','kB','MB','GB','TB'],i=0;while(a>=1024&&i<4){a/=1024;i++;}
    return s+(i?a.toFixed(2):a)+u[i];}
  return s+a;
}
function Flame(el){
  var f=JSON.parse(el.querySelector('script').textContent);
  var box=el.querySelector('.flame'),bar=el.querySelector('.bar'),q=el.querySelector('input');
  var info=el.querySelector('.matched');
  var all=[],maxDelta=0,depthMax=0;
  function walk(n,parent,depth){
    var node={n:n,parent:parent,depth:depth,kids:[],w:n[1]+n[2],name:n[0]<0?'all':f.names[n[0]]};
    maxDelta=Math.max(maxDelta,Math.abs(n[1]-n[2]));depthMax=Math.max(depthMax,depth);
    all.push(node);
    n[3].forEach(function(c){node.kids.push(walk(c,node,depth+1));});
    return node;
  }
  var root=walk(f.root,null,0),zoomed=root,re=null;
  box.style.height=((depthMax+1)*17)+'px';
  function label(node){
    var p=f.total?(100*(f.diff?node.n[1]-node.n[2]:node.n[1])/f.total).toFixed(2):'0';
    if(f.diff)return node.name+'  new '+fmt(node.n[1],f.unit)+', base '+fmt(node.n[2],f.unit)+
      ', change '+fmt(node.n[1]-node.n[2],f.unit)+' ('+p+'% of base)';
    return node.name+'  '+fmt(node.n[1],f.unit)+' ('+p+'%)';
  }
  function draw(){
    box.textContent='';
    var hits=0;
    function place(node,x,w,inside){
      if(w<0.0005&&node!==root)return;
      var d=document.createElement('div');
      d.style.left=(x*100)+'%';d.style.width=(w*100)+'%';d.style.top=(node.depth*17)+'px';
      d.style.background=colour(node.name,node.n,f,maxDelta);
      if(!inside)d.className='dim';
      if(re&&re.test(node.name)){d.className+=' hit';}
      d.textContent=w>0.02?node.name:'';
      d.onmouseover=function(){bar.textContent=label(node);};
      d.onclick=function(){zoomed=node;draw();};
      box.appendChild(d);
      if(!inside)return;
      var cx=x;
      node.kids.forEach(function(k){var kw=node.w?w*k.w/node.w:0;place(k,cx,kw,true);cx+=kw;});
    }
    for(var a=zoomed.parent;a;a=a.parent){place(a,0,1,false);}
    place(zoomed,0,1,true);
    if(re){
      (function count(node){if(re.test(node.name)){hits+=node.w;return;}node.kids.forEach(count);})(root);
      info.textContent='Matched: '+(root.w?(100*hits/root.w).toFixed(2):'0')+'%';
    }else{info.textContent='';}
  }
  q.oninput=function(){
    try{re=q.value?new RegExp(q.value):null;}catch(e){re=null;}
    draw();
  };
  el.querySelector('button').onclick=function(){zoomed=root;draw();};
  draw();
}
document.querySelectorAll('.flamebox').forEach(Flame);
})();
"""


def render_html(title: str, sections: list[str], flames: list[Flame]) -> str:
    """One self-contained page: ``sections`` are trusted HTML fragments, flames are drawn by our JS."""
    parts = ["<!DOCTYPE html><html><head><meta charset=\"utf-8\">",
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    parts.extend(sections)
    if flames:
        parts.append("<h2>Flame graphs</h2><p>Hover for details, click a frame to zoom, "
                     "search takes a regular expression.</p>")
    for fl in flames:
        parts.append(
            "<div class=\"flamebox\">"
            f"<h3>{html.escape(fl.title)}</h3>"
            "<div class=\"tools\"><button type=\"button\">Reset zoom</button> "
            "<input type=\"search\" placeholder=\"search (regexp)\"> <span class=\"matched\"></span></div>"
            "<div class=\"bar\"></div><div class=\"flame\"></div>"
            f"<script type=\"application/json\">{_script_json(flame_json(fl))}</script></div>")
    parts.append(f"<script>{_JS}</script></body></html>")
    return "".join(parts)
