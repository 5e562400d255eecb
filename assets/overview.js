/* The leaders' overview (/) in the browser: the filters in the address, and the keyboard focus
   kept across a refresh. */
(function () {
  /* The card a keyboard user is on. A refresh draws the cards anew, which drops the focus onto the
     page itself; the card with the same address gets it back. Focus anywhere else, or a click
     outside the cards, forgets it. */
  var focusedCard = null;
  function cardOf(node) { return node && node.closest ? node.closest("a.ov-card") : null; }
  document.addEventListener("focusin", function (event) {
    var card = cardOf(event.target);
    focusedCard = card ? card.getAttribute("href") : null;
  });
  document.addEventListener("pointerdown", function (event) {
    if (!cardOf(event.target)) { focusedCard = null; }
  });

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    citybrainOverview: {
      /* The server gives the filters as a query string ("?q=..&level=2", or "" for none); this
         writes it into the address without a reload or a history entry, keeping any other
         parameter (such as lang), so copying the address shares exactly this view. */
      syncUrl: function (query) {
        if (window.location.pathname !== "/") { return window.dash_clientside.no_update; }
        var url = new URL(window.location.href);
        ["q", "domain", "level"].forEach(function (name) { url.searchParams.delete(name); });
        var search = [url.searchParams.toString(), (query || "").replace(/^\?/, "")].filter(Boolean).join("&");
        var next = url.pathname + (search ? "?" + search : "") + url.hash;
        if (next !== window.location.pathname + window.location.search + window.location.hash) {
          window.history.replaceState(window.history.state, "", next);
        }
        return next;
      },
      /* When the version store changes, the cards are being redrawn with it: once the browser
         has drawn them, the focus goes back to the card that had it. */
      restoreFocus: function (version) {
        var wanted = focusedCard;
        window.requestAnimationFrame(function () {
          window.setTimeout(function () {
            var lost = !document.activeElement || document.activeElement === document.body;
            if (!wanted || !lost || focusedCard !== wanted) { return; }
            var cards = document.querySelectorAll("a.ov-card");
            for (var i = 0; i < cards.length; i += 1) {
              if (cards[i].getAttribute("href") === wanted) {
                cards[i].focus({preventScroll: true});
                return;
              }
            }
          }, 0);
        });
        return version;
      }
    }
  });
})();
