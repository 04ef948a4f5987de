// The live auction room: a WebSocket for the room's events, a countdown, and bids posted with fetch.
// Without a connection the page still works: the form posts and the page reloads.
(function () {
  "use strict";
  var box = document.getElementById("room");
  if (!box) return;
  var id = box.dataset.procedure;
  var snap = JSON.parse(document.getElementById("room-snapshot").textContent);
  var version = snap.version;
  var myLabel = snap.my_label;
  var endsAt = new Date(snap.ends_at);
  var lastRanks = snap.ranks || {};
  var lowest = snap.lowest;
  var wasFirst = null;
  function showRank() {
    var rank = myLabel ? lastRanks[String(myLabel)] : null;
    if ($("room-rank") && myLabel) $("room-rank").textContent = rank || "—";
    var standing = $("room-standing");
    if (!standing) return;
    if (!rank) {
      standing.textContent = "本单位尚未出价";
      standing.className = "room-standing";
    } else if (rank === 1) {
      standing.textContent = "本单位出价为当前最低价（第 1 名）";
      standing.className = "room-standing ok";
    } else {
      standing.textContent = "您已不是最低价：本单位第 " + rank + " 名，当前最低价 " + yuan(lowest);
      standing.className = "room-standing reason";
      // an earlier "出价成功" no longer describes the room
      if (wasFirst && $("bid-message") && $("bid-message").className.indexOf("ok") >= 0) {
        $("bid-message").textContent = "";
        $("bid-message").className = "small";
      }
    }
    wasFirst = rank === 1;
  }
  var $ = function (sel) { return document.getElementById(sel); };
  var yuan = function (s) { return s === null ? "暂无出价" : "¥" + Number(s).toLocaleString("zh-CN", {minimumFractionDigits: 2, maximumFractionDigits: 2}); };

  function apply(ev) {
    if (ev.lowest !== undefined) { lowest = ev.lowest; $("room-lowest").textContent = yuan(ev.lowest); }
    if (ev.bidders !== undefined) $("room-bidders").textContent = ev.bidders;
    if (ev.ends_at) { endsAt = new Date(ev.ends_at); }
    if (ev.extensions) {
      var wrap = $("room-ext-wrap"); if (wrap) wrap.textContent = "已延时 " + ev.extensions + " 次";
      var ext = $("room-ext"); if (ext) ext.textContent = ev.extensions;
    }
    if (ev.my_label !== undefined && ev.my_label !== null) { myLabel = ev.my_label; }
    if ($("room-label") && myLabel) $("room-label").textContent = "供应商 #" + myLabel;
    if (ev.ranks) lastRanks = ev.ranks;
    showRank();
    version = ev.version;
    box.dataset.version = version;
  }

  var socket = null;
  function connect() {
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(proto + "//" + location.host + "/procedures/" + id + "/room");
    socket.onopen = function () { $("room-live").textContent = "已实时连接"; };
    socket.onmessage = function (msg) {
      var ev = JSON.parse(msg.data);
      if (ev.type === "snapshot") { apply(ev); return; }
      if (ev.version <= version) return;             // already seen, or older than what we show
      // Every event carries the room's whole public state (lowest, end, ranks), read after its
      // commit; a version superseded before its event went out is simply never sent, so a newer
      // version is applied as it is. A reconnect brings a fresh snapshot.
      apply(ev);
    };
    socket.onclose = function (ev) {
      // the server's refusals come before any data: not logged in, no such room, too many connections
      if (ev.code === 4401 || ev.code === 4403 || ev.code === 4404) {
        $("room-live").textContent = "无法连接竞价室，请刷新页面";
        return;
      }
      if (ev.code === 4429) {
        $("room-live").textContent = "本账号打开的竞价室页面过多，请关闭其他页面；稍后自动重试…";
        setTimeout(connect, 30000);
        return;
      }
      $("room-live").textContent = "连接中断，正在重新连接…";
      setTimeout(connect, 1000);
    };
  }
  connect();

  function tick() {
    var left = Math.max(0, Math.floor((endsAt - new Date()) / 1000));
    var h = Math.floor(left / 3600), mnt = Math.floor((left % 3600) / 60), s = left % 60;
    $("room-countdown").textContent = left === 0 ? "已截止" : (h ? h + " 小时 " : "") + mnt + " 分 " + s + " 秒";
  }
  tick(); setInterval(tick, 500);

  var form = $("bid-form");
  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var data = new URLSearchParams(new FormData(form));
      var csrf = (document.cookie.match(/(?:^|; )mall_csrf=([^;]+)/) || [])[1] || "";
      fetch("/procedures/" + id + "/bid.json", {
        method: "POST", body: data, credentials: "same-origin",
        headers: {"x-csrftoken": decodeURIComponent(csrf), "accept": "application/json"}
      }).then(function (r) { return r.json().then(function (b) { return [r.ok, b]; }); })
        .then(function (res) {
          var ok = res[0], b = res[1];
          var li = document.createElement("li");
          // the platform's time is China time, whatever the browser's zone
          var t = new Date().toLocaleTimeString("zh-CN", {timeZone: "Asia/Shanghai", hour12: false});
          if (ok) {
            $("bid-message").textContent = "出价成功：" + yuan(b.amount);
            $("bid-message").className = "small ok";
            li.textContent = t + " " + yuan(b.amount) + " ✔";
            if (b.lowest !== undefined && b.lowest !== null) lowest = b.lowest;
          } else {
            $("bid-message").textContent = b.detail || "出价未被接受";
            $("bid-message").className = "small reason";
            li.textContent = t + " " + (data.get("amount") || "") + " ✘ " + (b.detail || "");  // as typed
          }
          $("my-bids").appendChild(li);
          if (ok && b.label) {                              // our anonymous label, known from the first bid
            myLabel = b.label;
            $("room-label").textContent = "供应商 #" + myLabel;
            showRank();
          }
        })
        .catch(function () { form.submit(); });
    });
  }
})();
