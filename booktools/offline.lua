-- Ship Vega, Vega-Lite and vega-embed with every page that holds an Altair chart, so that the
-- book reads offline (also opened from disk). The chapters' charts are drawn by the template
-- that hbm.book.common.setup() gives Altair, which calls the page's vegaEmbed and loads nothing itself.
-- Quarto copies these files into site_libs/ and links them with paths relative to each page.
-- The bundles are the pinned npm packages in _vendor/ (installed by `make`; see the Makefile).

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

function Pandoc(doc)
  if not quarto.doc.is_format("html") or not has_chart(doc) then
    return nil
  end
  for _, lib in ipairs({
    { name = "vega", file = "vega/build/vega.min.js" },
    { name = "vega-lite", file = "vega-lite/build/vega-lite.min.js" },
    { name = "vega-embed", file = "vega-embed/build/vega-embed.min.js" },
  }) do
    local path = VENDOR .. lib.file
    local fh = io.open(quarto.utils.resolve_path(path), "r")
    if fh == nil then
      error("booktools/offline.lua: " .. path .. " is missing; run `make install` (npm ci in _vendor/)")
    end
    fh:close()
    quarto.doc.add_html_dependency({ name = lib.name, scripts = { path } })
  end
  return nil
end
