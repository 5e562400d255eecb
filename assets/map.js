/* /map in the browser: heat cells, alert markers, stations drawn in their layer's pane, the address
   that holds the view, the panel's focus and Escape, and the legends that follow the layer control.
   Everything here runs offline (no external URL). Texts from the server are set as text, never HTML. */
window.citybrain = Object.assign(window.citybrain || {}, {
  /* The ramp's colour at a share in [0, 1], blended between its stops (the legend's gradient). */
  heatColour: function (ramp, share) {
    var at = Math.max(0, Math.min(1, share)) * (ramp.length - 1);
    var low = Math.floor(at), high = Math.min(ramp.length - 1, low + 1), part = at - low;
    var channel = function (hex, i) { return parseInt(hex.substr(1 + 2 * i, 2), 16); };
    var mixed = [0, 1, 2].map(function (i) {
      return Math.round(channel(ramp[low], i) * (1 - part) + channel(ramp[high], i) * part);
    });
    return "rgb(" + mixed.join(",") + ")";
  },
  /* A heat cell arrives as its centre; the grid's cell size (hideout) makes it a square again. */
  heatCell: function (feature, latlng, context) {
    var half = [context.hideout.cell[1] / 2, context.hideout.cell[0] / 2];
    var bounds = [[latlng.lat - half[0], latlng.lng - half[1]], [latlng.lat + half[0], latlng.lng + half[1]]];
    return L.rectangle(bounds, {pane: context.pane, interactive: false, className: "heat-cell"});
  },
  /* A cell's colour and opacity grow with its share of the densest cell. */
  heatStyle: function (feature, context) {
    var share = feature.properties.share;
    return {
      stroke: false,
      fillColor: window.citybrain.heatColour(context.hideout.ramp, share),
      fillOpacity: 0.12 + 0.58 * share,
      className: "heat-cell"
    };
  },
  /* The shared choropleth style; the district whose panel is open gets a bright, thick edge. */
  mapDistrictStyle: function (feature, context) {
    var style = window.citybrain.districtStyle(feature, context);
    if (context.hideout.selected && feature.properties.code === context.hideout.selected) {
      style.color = "#ffffff";
      style.weight = 3.5 * window.citybrain.scale();
      style.opacity = 1;
    }
    return style;
  },
  /* The shared station marker, drawn in the pane of the layer it belongs to (so the stations stay
     above the district shapes whichever layers are switched on). */
  mapStationMarker: function (feature, latlng, context) {
    var marker = window.citybrain.stationMarker(feature, latlng);
    if (context && context.pane) { marker.options.pane = context.pane; }
    return marker;
  },
  /* A cluster of stations (large cities) shows how many it holds, ringed in the worst level among
     them, so a red station is not hidden inside a calm-looking cluster. */
  stationCluster: function (feature, latlng, index) {
    var worst = {severity: -1, colour: "#6b7280"};
    index.getLeaves(feature.properties.cluster_id, Infinity).forEach(function (leaf) {
      if (leaf.properties.severity > worst.severity) { worst = leaf.properties; }
    });
    var size = Math.round(34 * window.citybrain.scale());
    var count = document.createElement("span");
    count.textContent = feature.properties.point_count_abbreviated;
    count.style.borderColor = worst.colour;
    return L.marker(latlng, {
      icon: L.divIcon({html: count, className: "station-cluster level-" + worst.severity, iconSize: [size, size]})
    });
  },
  alertMarker: function (feature, latlng) {
    var p = feature.properties;
    var size = Math.round((20 + 3 * p.severity) * window.citybrain.scale());
    var badge = document.createElement("span");
    var numeral = document.createElement("b");
    numeral.textContent = p.roman || "!";
    badge.appendChild(numeral);
    badge.style.background = p.colour;
    return L.marker(latlng, {
      icon: L.divIcon({html: badge, className: "alert-marker level-" + p.severity, iconSize: [size, size]}),
      keyboard: false,
      riseOnHover: true
    });
  },
  alertTooltip: function (feature, layer) {
    var text = document.createElement("div");
    text.className = "alert-tooltip";
    text.textContent = feature.properties.text;
    layer.bindTooltip(text, {direction: "top"});
  }
});

/* Escape closes the district panel, whatever has the focus. */
document.addEventListener("keydown", function (event) {
  if (event.key !== "Escape") { return; }
  var panel = document.getElementById("map-panel");
  var close = document.getElementById("map-panel-close");
  if (panel && !panel.hidden && close) {
    event.preventDefault();
    close.click();
  }
});

window.dash_clientside = Object.assign({}, window.dash_clientside, {
  citybrainMap: {
    /* The indicator and the district, written into the address (no reload, no history entry), so
       copying the address shares exactly this view. */
    syncUrl: function (indicator, district) {
      var parts = [];
      if (indicator) { parts.push("indicator=" + encodeURIComponent(indicator)); }
      if (district) { parts.push("district=" + encodeURIComponent(district)); }
      var query = parts.length ? "?" + parts.join("&") : "";
      if (window.location.pathname === "/map" && window.location.search !== query) {
        window.history.replaceState(window.history.state, "", "/map" + query);
      }
      return query;
    },
    /* The open district's edge follows the district picker at once (no round trip). */
    selectDistrict: function (district, hideout) {
      return Object.assign({}, hideout || {}, {selected: district || null});
    },
    /* An opened panel takes the focus (its heading), a closed one gives it back to the map. */
    focusPanel: function (hidden) {
      var target = hidden ? document.getElementById("map-map") : document.getElementById("map-panel-title");
      if (target) {
        window.requestAnimationFrame(function () { target.focus({preventScroll: true}); });
      }
      return hidden ? "map" : "panel";
    },
    /* A legend shows while its layer is switched on in the layer control. */
    showLegends: function (overlays) {
      var on = overlays || [];
      var hidden = function (id) {
        var block = document.getElementById(id);
        return block ? on.indexOf(block.dataset.layer) < 0 : false;
      };
      return [hidden("map-legend-districts"), hidden("map-legend-heat")];
    }
  }
});
