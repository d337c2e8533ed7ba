// booktools/fonts.js: what on a page measures text waits for the book's fonts (booktools/fonts.css).
// MathJax scales its SVG to the ex-height of the text around it, and Vega sizes axes and legends
// by the width of their labels: measured before the font has loaded, both would measure the
// machine's default font and lay out differently on every machine. bookFontsReady() loads every
// face the page's style sheets declare (once; a face that fails to load is skipped, and the
// browser test reports the missing file) and resolves when all have loaded.
window.bookFontsReady = (function () {
  var ready = null;
  return function () {
    if (ready === null) {
      ready = !document.fonts ? Promise.resolve() : Promise.all(Array.from(document.fonts, function (face) {
        return face.load().catch(function () { return null; });
      }));
    }
    return ready;
  };
})();

// MathJax reads this configuration when it loads (after this script): typeset once the fonts are in.
window.MathJax = {
  startup: {
    pageReady: function () {
      return window.bookFontsReady().then(function () { return MathJax.startup.defaultPageReady(); });
    }
  }
};

// Mermaid diagrams size each box by its text: draw them in the book's font, not Mermaid's
// default ("trebuchet ms", or whatever the machine has instead). Quarto draws them on the
// window's load event, which waits for the fonts bookFontsReady() is loading.
document.addEventListener("DOMContentLoaded", function () {
  var api = window.mermaid && window.mermaid.mermaidAPI;
  if (!api || !api.updateSiteConfig) return;
  var family = getComputedStyle(document.body).fontFamily;
  api.updateSiteConfig({ fontFamily: family, themeVariables: { fontFamily: family } });
});
