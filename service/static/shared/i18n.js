// The pages' languages: one strings file per language (strings/<lang>.json), chosen from the
// browser's languages and switchable; the choice is kept on the device.
export const LANGUAGES = { en: "English", "zh-CN": "中文" };
const STORED = "doorstep.lang";

export function chosenLanguage() {
  const stored = localStorage.getItem(STORED);
  if (stored && stored in LANGUAGES) return stored;
  for (const lang of navigator.languages || [navigator.language || "en"]) {
    if (lang.toLowerCase().startsWith("zh")) return "zh-CN";
    if (lang.toLowerCase().startsWith("en")) return "en";
  }
  return "en";
}

export class I18n {
  constructor(lang, strings) {
    this.lang = lang;
    this.strings = strings;
  }

  static async load(lang = chosenLanguage()) {
    const response = await fetch(`/static/shared/strings/${lang}.json`);
    const strings = await response.json();
    document.documentElement.lang = lang;
    return new I18n(lang, strings);
  }

  static remember(lang) {
    localStorage.setItem(STORED, lang);
  }

  // The string ``key`` with {name} placeholders filled from ``values``; the key itself if missing.
  t(key, values = {}) {
    const text = this.strings[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
  }

  // Fills every element with data-i18n="key" under ``root``.
  apply(root = document) {
    for (const element of root.querySelectorAll("[data-i18n]")) element.textContent = this.t(element.dataset.i18n);
  }
}
