/* The duty desk in the browser: the alarm tone (Web Audio, no sound file), the flash of a new
   orange or red alert, the note field's focus, and the address bar that holds the filters.
   Browsers refuse to play sound until the user clicks: switching the sound on is that click. */
window.citybrainDeskAudio = {
  context: null,
  played: 0,
  start: function () {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return null; }
    if (!this.context) { this.context = new Context(); }
    if (this.context.state === "suspended") { this.context.resume(); }
    return this.context;
  },
  /* Red: five quick alternating high tones; orange: three lower ones; the switch itself: one. */
  play: function (severity) {
    var audio = this.context;
    if (!audio) { return false; }
    if (audio.state === "suspended") { audio.resume(); }
    var tones = severity >= 4 ? [880, 660, 880, 660, 880] : severity >= 3 ? [660, 520, 660] : [740];
    var at = audio.currentTime + 0.05;
    tones.forEach(function (frequency) {
      var oscillator = audio.createOscillator();
      var gain = audio.createGain();
      oscillator.type = "sine";
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.22);
      oscillator.connect(gain);
      gain.connect(audio.destination);
      oscillator.start(at);
      oscillator.stop(at + 0.25);
      at += 0.28;
    });
    this.played += 1;
    return true;
  }
};

window.dash_clientside = Object.assign({}, window.dash_clientside, {
  citybrainDesk: {
    /* The filters and the open alert, written into the address (no reload, no history entry), so
       copying the address shares exactly this view. */
    syncUrl: function (level, domain, district, state, department, selected) {
      var parts = [];
      var filters = {level: level, domain: domain, district: district, state: state, department: department};
      Object.keys(filters).forEach(function (name) {
        var values = filters[name] || [];
        if (values.length) { parts.push(name + "=" + values.map(encodeURIComponent).join(",")); }
      });
      if (selected && selected.id) { parts.push("alert=" + encodeURIComponent(selected.id)); }
      var query = parts.length ? "?" + parts.join("&") : "";
      if (window.location.pathname === "/alerts" && window.location.search !== query) {
        window.history.replaceState(window.history.state, "", "/alerts" + query);
      }
      return query;
    },
    toggleSound: function (_clicks, on) {
      var button = document.getElementById("desk-sound");
      var next = !on;
      if (next && window.citybrainDeskAudio.start()) { window.citybrainDeskAudio.play(0); }
      var label = button ? (next ? button.dataset.on : button.dataset.off) : "";
      return [next, label, String(next)];
    },
    announce: function (alarm, soundOn) {
      if (!alarm || !alarm.severity) { return window.dash_clientside.no_update; }
      var banner = document.getElementById("desk-announce");
      if (banner) {
        banner.classList.remove("flash");
        window.requestAnimationFrame(function () {
          void banner.offsetWidth;
          banner.classList.add("flash");
        });
      }
      return soundOn ? window.citybrainDeskAudio.play(alarm.severity) : false;
    },
    /* After "acknowledge" on a row: the note field, ready for typing (the panel has just been
       filled, so wait for the browser to draw it). */
    focusNote: function (focus) {
      if (!focus || !focus.at) { return window.dash_clientside.no_update; }
      window.setTimeout(function () {
        var note = document.getElementById("desk-note");
        if (note) {
          note.focus();
          note.scrollIntoView({block: "nearest"});
        }
      }, 0);
      return focus.at;
    }
  }
});

/* One listener for every row's buttons: "open" selects the alert, "acknowledge" selects it and asks
   for the note field's focus (click one of the two-click acknowledgement). */
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("[data-desk-open], [data-desk-ack]") : null;
  if (!button || !window.dash_clientside || !window.dash_clientside.set_props) { return; }
  var acknowledge = button.hasAttribute("data-desk-ack");
  var id = Number(acknowledge ? button.getAttribute("data-desk-ack") : button.getAttribute("data-desk-open"));
  window.dash_clientside.set_props("desk-selected", {data: {id: id, focus: acknowledge, at: Date.now()}});
});
