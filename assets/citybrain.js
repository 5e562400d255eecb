/* CityBrain OC browser-side functions: map styling for dash-leaflet and the header's clock and
   language switch. Everything here runs offline (no external URL). */
window.citybrain = Object.assign(window.citybrain || {}, {
  /* District choropleth: colour from the level the server computed (hideout), so a refresh only
     sends the small hideout object, never the boundaries again. */
  districtStyle: function (feature, context) {
    var styled = (context.hideout.districts || {})[feature.properties.code] || {};
    var severity = styled.severity || 0;
    return {
      fillColor: styled.colour || context.hideout.stale,
      fillOpacity: severity > 0 ? 0.55 : 0.28,
      color: "#9fc3ff",
      weight: 1.5 * window.citybrain.scale(),
      opacity: 0.9,
      className: "district-shape"
    };
  },
  districtTooltip: function (feature, layer, context) {
    var styled = (context.hideout.districts || {})[feature.properties.code] || {};
    layer.bindTooltip(styled.text || feature.properties.code, {sticky: true});
  },
  /* Pixel sizes follow the root font size, which follows the screen height (16 px at 1080 p).
     Read once and kept until the window is resized: reading a computed style while markers are
     being added forces a style recalculation for every marker, district and cluster. */
  scale: (function () {
    var rootScale = null;
    window.addEventListener("resize", function () { rootScale = null; });
    return function () {
      if (rootScale === null) {
        rootScale = parseFloat(getComputedStyle(document.documentElement).fontSize) / 16;
      }
      return rootScale;
    };
  })(),
  stationMarker: function (feature, latlng) {
    var p = feature.properties;
    return L.circleMarker(latlng, {
      radius: (p.severity > 0 ? 7 + p.severity : 5) * window.citybrain.scale(),
      fillColor: p.colour, color: "#0b1220", weight: 1, fillOpacity: 0.95,
      className: "station-marker" + (p.severity > 0 ? " warning level-" + p.severity : "")
    });
  },
  stationTooltip: function (feature, layer) {
    layer.bindTooltip(feature.properties.text);
  }
});

window.dash_clientside = Object.assign({}, window.dash_clientside, {
  citybrain: {
    clock: function (_n, lang) {
      var el = document.getElementById("clock");
      var zone = (el && el.dataset.tz) || "Asia/Shanghai";
      var text = new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-CN", {
        timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
        weekday: "short", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
      }).format(new Date());
      return text;
    },
    /* The language lives in a cookie the server reads, so every page renders in it from the
       start; switching reloads once. */
    switchLanguage: function (_zh, _en) {
      var ctx = window.dash_clientside.callback_context;
      var lang = ctx.triggered_id === "lang-en" ? "en" : "zh-CN";
      document.cookie = "citybrain_lang=" + lang + "; path=/; max-age=31536000; SameSite=Lax";
      var url = new URL(window.location.href);
      url.searchParams.delete("lang");
      window.location.assign(url.toString());
      return lang;
    }
  }
});
