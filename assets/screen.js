/* /screen in the browser: station points, clusters and open-warning markers for dash-leaflet.
   The station layer arrives once (geobuf, no properties: dash-leaflet numbers the points by their
   position); each refresh sends only `hideout.levels`, {position: level} for the stations that are
   not plainly normal (-1: no current reading). Runs offline: no external URL. */
(function () {
  var clusterLevels = { levels: null, index: null, found: {} };

  function levelOf(levels, id) {
    var found = levels[id];
    return found === undefined ? 0 : found;
  }

  /* The worst level among a cluster's stations, and whether any of them has no current reading.
     Remembered per cluster until the levels or the cluster index change (a pan reuses them). */
  function worstInCluster(index, clusterId, levels) {
    if (clusterLevels.levels !== levels || clusterLevels.index !== index) {
      clusterLevels = { levels: levels, index: index, found: {} };
    }
    var known = clusterLevels.found[clusterId];
    if (known) { return known; }
    var leaves = index.getLeaves(clusterId, Infinity);
    var worst = -1, stale = false;
    for (var i = 0; i < leaves.length; i++) {
      var level = levelOf(levels, leaves[i].properties.id);
      if (level < 0) { stale = true; } else if (level > worst) { worst = level; }
    }
    known = { worst: worst, stale: stale };
    clusterLevels.found[clusterId] = known;
    return known;
  }

  function colourOf(hideout, level) {
    return level < 0 ? hideout.stale : hideout.colours[level];
  }

  function textTooltip(text) {
    var box = document.createElement("div");
    text.split("\n").forEach(function (line, i) {
      if (i) { box.appendChild(document.createElement("br")); }
      box.appendChild(document.createTextNode(line));
    });
    return box;
  }

  window.citybrain = Object.assign(window.citybrain || {}, {
    screenStation: function (feature, latlng, context) {
      var hideout = context.hideout;
      var level = levelOf(hideout.levels || {}, feature.properties.id);
      return L.circleMarker(latlng, {
        pane: hideout.pane,
        radius: (level > 0 ? 6 + level : 5) * window.citybrain.scale(),
        fillColor: colourOf(hideout, level), color: "#0b1220", weight: 1, fillOpacity: 0.95,
        className: "station-marker" + (level > 0 ? " warning level-" + level : level < 0 ? " stale" : "")
      });
    },
    screenCluster: function (feature, latlng, index, context) {
      var hideout = context.hideout;
      var found = worstInCluster(index, feature.properties.cluster_id, hideout.levels || {});
      var count = feature.properties.point_count;
      var size = Math.round((1.9 + 0.45 * Math.log10(count)) * 16 * window.citybrain.scale());
      return L.marker(latlng, {
        pane: hideout.pane,
        keyboard: false,
        icon: L.divIcon({
          html: '<span style="background:' + colourOf(hideout, found.worst) + '">' +
                Number(count).toLocaleString() + "</span>",
          className: "screen-cluster level-" + found.worst + (found.stale ? " has-stale" : ""),
          iconSize: L.point(size, size)
        })
      });
    },
    screenAlert: function (feature, latlng, context) {
      var p = feature.properties;
      var colour = context.hideout.colours[p.severity];
      var size = Math.round((1.9 + 0.35 * p.severity) * 16 * window.citybrain.scale());
      return L.marker(latlng, {
        pane: context.hideout.pane,
        keyboard: false,
        icon: L.divIcon({
          html: '<i class="ring" style="border-color:' + colour + '"></i>' +
                '<i class="core" style="background:' + colour + '"></i>',
          className: "screen-alert level-" + p.severity + (p.pulse ? " pulse" : ""),
          iconSize: L.point(size, size)
        })
      });
    },
    screenAlertTooltip: function (feature, layer) {
      layer.bindTooltip(textTooltip(feature.properties.text), { direction: "top" });
    }
  });
})();

/* Clusters merge stations closer than `radius` screen pixels. On a 4K wall everything is drawn twice
   as large (the root font follows the screen height), so the radius grows with it: the same
   stations merge at 3840x2160 as at 1920x1080. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  citybrain_screen: {
    clusterOptions: function (_id, options) {
      var scale = window.citybrain.scale();
      if (!options || Math.abs(scale - 1) < 0.01) { return window.dash_clientside.no_update; }
      return Object.assign({}, options, { radius: Math.round(options.radius * scale) });
    }
  }
});
