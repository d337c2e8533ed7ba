// booktools/vega-fonts.js: loaded right after vega-embed on every page with a chart
// (booktools/offline.lua). The charts' template (hbm.book.common.CHART_TEMPLATE) calls the page's
// vegaEmbed; this wraps it so that a chart is drawn once the book's fonts have loaded
// (booktools/fonts.js: Vega sizes axes and legends by the width of their labels, which it would
// otherwise measure in the machine's default font), and keeps vega-embed's result (view, spec,
// compiled Vega spec) on the chart's element as `__embed`, where tests/test_browser.py reads
// what each chart encodes and which legends it has.
(function () {
  var embed = window.vegaEmbed;
  if (typeof embed !== "function" || embed.bookFonts) return;
  var wrapped = function (el, spec, options) {
    var ready = window.bookFontsReady ? window.bookFontsReady() : Promise.resolve();
    return ready.then(function () { return embed(el, spec, options); }).then(function (result) {
      var target = typeof el === "string" ? document.querySelector(el) : el;
      if (target) target.__embed = result;
      return result;
    });
  };
  Object.keys(embed).forEach(function (key) { wrapped[key] = embed[key]; });
  wrapped.bookFonts = true;
  window.vegaEmbed = wrapped;
})();
