#pragma once
// The admin listener's live status page: one self-contained HTML document (no external
// assets, works offline) that polls /status.json every 2 s and computes rates from the
// cumulative counters it keeps in the browser.

#include <string_view>

namespace phlow::gateway {
extern const std::string_view kStatusPageHtml;
}  // namespace phlow::gateway
