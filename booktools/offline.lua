-- The book reads offline (also opened from disk) and looks the same on every machine:
--
-- * every page links the book's fonts (booktools/fonts.css: Source Sans 3 and Source Code Pro,
--   the pinned Fontsource npm packages in _vendor/) and booktools/fonts.js, which makes MathJax
--   typeset, and lets the charts draw, once those fonts have loaded. Quarto copies the style
--   sheet and every woff2 file it names into site_libs/quarto-contrib/book-fonts/ (the
--   post-render step, booktools/offline.py, then writes the fonts into the style sheet).
-- * every page that holds an Altair chart ships Vega, Vega-Lite and vega-embed, and
--   booktools/vega-fonts.js, which makes vegaEmbed wait for those fonts. The chapters' charts
--   are drawn by the template that hbm.book.common.setup() gives Altair, which calls the page's
--   vegaEmbed and loads nothing itself.
--
-- Quarto copies these files into site_libs/ and links them with paths relative to each page.
-- The npm packages are installed by `make` (npm ci in _vendor/; see the Makefile).

local VENDOR = "../_vendor/node_modules/"

local function has_chart(doc)
  local found = false
  doc:walk({
    RawBlock = function(el)
      if el.format == "html" and el.text:find("vegaEmbed(", 1, true) then
        found = true
      end
    end,
  })
  return found
end

-- A file, by its path relative to this filter, opened; fails the render, naming it, if it is missing.
local function open(path)
  local fh = io.open(quarto.utils.resolve_path(path), "r")
  if fh == nil then
    error("booktools/offline.lua: " .. path .. " is missing; run `make install` (npm ci in _vendor/)")
  end
  return fh
end

local function add_fonts()
  -- Quarto copies only files that exist: a font missing from _vendor/ must fail the render.
  local fh = open("fonts.css")
  local css = fh:read("a")
  fh:close()
  for url in css:gmatch("url%(([^)]+)%)") do
    open(url):close()
  end
  quarto.doc.add_html_dependency({ name = "book-fonts", scripts = { "fonts.js" }, stylesheets = { "fonts.css" } })
end

local function add_vega()
  for _, lib in ipairs({
    { name = "vega", file = "vega/build/vega.min.js" },
    { name = "vega-lite", file = "vega-lite/build/vega-lite.min.js" },
    { name = "vega-embed", file = "vega-embed/build/vega-embed.min.js" },
  }) do
    local path = VENDOR .. lib.file
    open(path):close()
    quarto.doc.add_html_dependency({ name = lib.name, scripts = { path } })
  end
  quarto.doc.add_html_dependency({ name = "vega-fonts", scripts = { "vega-fonts.js" } })
end

function Pandoc(doc)
  if not quarto.doc.is_format("html") then
    return nil
  end
  add_fonts()
  if has_chart(doc) then
    add_vega()
  end
  return nil
end
