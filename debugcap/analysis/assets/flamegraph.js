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
