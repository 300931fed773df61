// One typed reader of option values (flags, environment, config file, or a backend's share of them): a
// string option that is unset or empty reads as undefined, so "not given" has one meaning everywhere.

export interface OptionReader {
  /** a non-empty string value, else undefined */
  str: (name: string) => string | undefined;
  /** true only for a boolean true */
  bool: (name: string) => boolean;
  /** a repeatable option's non-empty values ([] when unset) */
  list: (name: string) => string[];
}

export function optionReader(get: (name: string) => unknown): OptionReader {
  return {
    str(name) {
      const v = get(name);
      return typeof v === 'string' && v !== '' ? v : undefined;
    },
    bool: (name) => get(name) === true,
    list(name) {
      const v = get(name);
      return Array.isArray(v) ? v.map(String).filter((s) => s !== '') : [];
    },
  };
}
