// JSON -> Document. nlohmann parses the tree; a second, light pass over the (by then
// known valid) text finds the line of every key and element, and the duplicate keys
// nlohmann would silently collapse.

#include <unordered_set>

#include "document.hpp"
#include "path.hpp"

namespace phlow::config {
namespace {

using Json = nlohmann::ordered_json;

class LineScanner {
 public:
  LineScanner(std::string_view text, Document& doc) : text_(text), doc_(doc) {}

  void scan() { value(Path{}); }

 private:
  void value(const Path& path) {
    skip_space();
    doc_.lines.emplace(path.pointer(), line_);  // keeps the key's line when set
    if (at('{')) {
      object(path);
    } else if (at('[')) {
      array(path);
    } else if (at('"')) {
      string();
    } else {
      // A number or literal: it ends at the next delimiter.
      while (pos_ < text_.size() && !is_space(text_[pos_]) && !at(',') && !at(']') && !at('}')) {
        ++pos_;
      }
    }
  }

  void object(const Path& path) {
    ++pos_;
    std::unordered_set<std::string> seen;
    skip_space();
    while (pos_ < text_.size() && !at('}')) {
      skip_space();
      const int key_line = line_;
      const std::string key = Json::parse(string()).get<std::string>();
      const Path child = path.key(key);
      if (!seen.insert(key).second) {
        doc_.errors.push_back({doc_.file, key_line, child.display(),
                               "duplicate key \"" + key + "\""});
      }
      doc_.lines.emplace(child.pointer(), key_line);
      skip_space();
      ++pos_;  // ':'
      value(child);
      skip_space();
      if (at(',')) ++pos_;
      skip_space();
    }
    ++pos_;
  }

  void array(const Path& path) {
    ++pos_;
    std::size_t i = 0;
    skip_space();
    while (pos_ < text_.size() && !at(']')) {
      value(path.index(i++));
      skip_space();
      if (at(',')) ++pos_;
      skip_space();
    }
    ++pos_;
  }

  // Consumes a string token and returns it with its quotes, still escaped.
  std::string_view string() {
    const std::size_t begin = pos_++;
    while (pos_ < text_.size() && text_[pos_] != '"') pos_ += text_[pos_] == '\\' ? 2 : 1;
    ++pos_;
    return text_.substr(begin, pos_ - begin);
  }

  void skip_space() {
    while (pos_ < text_.size() && is_space(text_[pos_])) {
      if (text_[pos_] == '\n') ++line_;
      ++pos_;
    }
  }

  static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  bool at(char c) const { return pos_ < text_.size() && text_[pos_] == c; }

  std::string_view text_;
  Document& doc_;
  std::size_t pos_ = 0;
  int line_ = 1;
};

int line_at(std::string_view text, std::size_t byte) {
  int line = 1;
  for (std::size_t i = 0; i < byte && i < text.size(); ++i) line += text[i] == '\n';
  return line;
}

}  // namespace

Document read_json(std::string_view text, const std::string& file) {
  Document doc;
  doc.file = file;
  try {
    doc.tree = Json::parse(text);
  } catch (const Json::parse_error& e) {
    // e.byte is 1-based, one past the offending character.
    const auto byte = e.byte > 0 ? e.byte - 1 : 0;
    std::string what = e.what();
    if (auto colon = what.find("syntax error"); colon != std::string::npos) what = what.substr(colon);
    doc.errors.push_back({file, line_at(text, byte), "", "invalid JSON: " + what});
    return doc;
  } catch (const Json::exception& e) {
    // out_of_range 406 ("number overflow parsing '1e999'") carries no position: the
    // line of the quoted token, when it is found.
    std::string what = e.what();
    if (auto bracket = what.find("] "); bracket != std::string::npos) what = what.substr(bracket + 2);
    int line = 0;
    if (auto open = what.find('\''), close = what.rfind('\'');
        open != std::string::npos && close > open + 1) {
      if (auto at = text.find(std::string_view(what).substr(open + 1, close - open - 1));
          at != std::string_view::npos) {
        line = line_at(text, at);
      }
    }
    doc.errors.push_back({file, line, "", "invalid JSON: " + what});
    return doc;
  }
  LineScanner(text, doc).scan();
  return doc;
}

}  // namespace phlow::config
