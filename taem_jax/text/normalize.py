"""Text normalisation for English g2p: everything a reader would say, spelled out in words.

Rules, applied in this order (`normalize_text`):

1. Unicode: typographic quotes/dashes/ellipses become ASCII; letters with diacritics are
   transliterated by NFKD decomposition (café -> cafe); a few letters that do not decompose are
   mapped by hand (ß -> ss, æ -> ae, ø -> o, ł -> l, đ/ð -> d, þ -> th, œ -> oe). **Any other
   non-ASCII character (CJK, emoji, symbols) is dropped**: g2p_en and CMUdict only know English
   spelling, and guessing a pronunciation for a foreign script would put wrong mouth shapes on
   screen. A word made only of such characters disappears; if nothing pronounceable is left,
   `text_to_phonemes` raises a UserError.
2. Abbreviations with a period (Mr. Mrs. Ms. Dr. Prof. St. Jr. Sr. vs. etc. e.g. i.e. Mt.
   Capt. Gen. Lt. Col. Sgt. Co. Ltd. Inc. approx. Ave. Jan. Feb. ...; "No." only before a
   number) are expanded; their period does not end a sentence. Abbreviations that are also
   common words ("fig.", "Mar.", "no.") are left alone. `St.` is read "saint" before a
   capitalised word, else "street".
3. Currency: $ £ € ¥ before an amount, with optional decimals and a scale word (million ...):
   "$250" -> "two hundred fifty dollars", "$2.50" -> "two dollars fifty cents",
   "€3 million" -> "three million euros".
4. Percent: "12.5%" -> "twelve point five percent".
5. Ordinals: "3rd" -> "third", "21st" -> "twenty first".
6. Times: "3:30" -> "three thirty", "7:05" -> "seven oh five", "10:00" -> "ten o'clock".
7. Numbers: thousands separators removed; years 1100..1999 and 2010..2099 are read in pairs
   ("1999" -> "nineteen ninety nine", "2024" -> "twenty twenty four"), other integers in full
   ("2005" -> "two thousand five", "1000000" -> "one million"); decimals digit by digit after
   "point"; a leading minus sign -> "minus". Numbers above 10^15 are read digit by digit.
8. Symbols: & -> and, % -> percent, + -> plus, = -> equals, @ -> at, # before a number ->
   number, / between words -> slash.

Pause-giving punctuation (. , ; : ! ? ... - parentheses) is kept for `g2p`; everything else that
is not a letter, digit, apostrophe or space is removed.
"""
import re
import unicodedata

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}

_CHAR_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": " - ", "\u2014": " - ", "\u2015": " - ", "\u2026": "...", "\u00a0": " ",
    "\u00df": "ss", "\u00e6": "ae", "\u00c6": "AE", "\u00f8": "o", "\u00d8": "O", "\u0142": "l",
    "\u0141": "L", "\u0111": "d", "\u0110": "D", "\u00f0": "d", "\u00d0": "D", "\u00fe": "th",
    "\u00de": "Th", "\u0153": "oe", "\u0152": "OE", "\u0131": "i",
}

_ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miz", "dr": "doctor", "prof": "professor",
    "jr": "junior", "sr": "senior", "vs": "versus", "etc": "et cetera",
    "mt": "mount", "capt": "captain", "gen": "general", "lt": "lieutenant", "col": "colonel",
    "sgt": "sergeant", "co": "company", "ltd": "limited", "inc": "incorporated",
    "approx": "approximately", "ave": "avenue", "dept": "department", "gov": "governor",
    "rev": "reverend", "jan": "january", "feb": "february", "apr": "april", "aug": "august",
    "sept": "september", "sep": "september", "oct": "october", "nov": "november", "dec": "december",
}
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny",
                                                                  "pence"),
               "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", "sen", "sen")}


def number_to_words(n: int) -> str:
  """Cardinal number in words, no "and": 250 -> "two hundred fifty"."""
  if n < 0:
    return "minus " + number_to_words(-n)
  if n >= 10**15:
    return " ".join(_ONES[int(d)] for d in str(n))
  if n < 20:
    return _ONES[n]
  if n < 100:
    return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
  if n < 1000:
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
  for value, name in _SCALES:
    if n >= value:
      head, rest = divmod(n, value)
      return (number_to_words(head) + " " + name
              + ("" if rest == 0 else " " + number_to_words(rest)))
  raise AssertionError(n)


def ordinal_words(n: int) -> str:
  """21 -> "twenty first", 100 -> "one hundredth"."""
  words = number_to_words(n).split()
  last = words[-1]
  if last in _ORDINAL_WORDS:
    last = _ORDINAL_WORDS[last]
  elif last.endswith("y"):
    last = last[:-1] + "ieth"
  else:
    last += "th"
  return " ".join(words[:-1] + [last])


def year_words(n: int) -> str:
  """Reads a year-like integer in pairs where people do: 1999 -> nineteen ninety nine."""
  if 1100 <= n <= 1999 or 2010 <= n <= 2099:
    hi, lo = divmod(n, 100)
    if lo == 0:
      return number_to_words(hi) + " hundred"
    return number_to_words(hi) + " " + (("oh " + _ONES[lo]) if lo < 10 else number_to_words(lo))
  return number_to_words(n)


def _digits_words(s: str) -> str:
  return " ".join(_ONES[int(d)] for d in s)


def _decimal_words(intpart: str, frac: str | None) -> str:
  words = number_to_words(int(intpart)) if intpart else "zero"
  if frac:
    words += " point " + _digits_words(frac)
  return words


def _transliterate(text: str) -> str:
  text = "".join(_CHAR_MAP.get(c, c) for c in text)
  out = []
  for c in unicodedata.normalize("NFKD", text):
    if unicodedata.combining(c):
      continue
    out.append(c if ord(c) < 128 or c in _CURRENCIES else " ")  # rule 1: other scripts go
  return "".join(out)


def _currency(m: re.Match) -> str:
  one, many, sub_one, sub_many = _CURRENCIES[m.group("cur")]
  whole = int((m.group("int") or "0").replace(",", "") or "0")
  frac, scale = m.group("frac"), m.group("scale")
  if scale:  # "$2.5 million" -> "two point five million dollars"
    return f"{_decimal_words(str(whole), frac)} {scale.lower()} {many}"
  words = [f"{number_to_words(whole)} {one if whole == 1 else many}"] if whole or not frac else []
  if frac:
    cents = int((frac + "0")[:2])
    if cents:
      words.append(f"{number_to_words(cents)} {sub_one if cents == 1 else sub_many}")
    elif not words:
      words.append(f"zero {many}")
  return " " + " and ".join(words) + " "


def _time(m: re.Match) -> str:
  h, mins = int(m.group(1)), int(m.group(2))
  if mins == 0:
    return f" {number_to_words(h)} o'clock "
  return f" {number_to_words(h)} " + (f"oh {_ONES[mins]}" if mins < 10
                                      else number_to_words(mins)) + " "


def _number(m: re.Match) -> str:
  sign, intpart, frac = m.group("sign"), m.group("int").replace(",", ""), m.group("frac")
  if frac is None and "," not in m.group("int") and len(intpart) == 4 and not sign:
    words = year_words(int(intpart))
  elif len(intpart) > 1 and intpart.startswith("0") and frac is None:
    words = _digits_words(intpart)  # "007", zip codes: digit by digit
  else:
    words = _decimal_words(intpart, frac)
  return " " + ("minus " if sign else "") + words + " "


_CURRENCY_RE = re.compile(
    r"(?P<cur>[$£€¥])\s?(?P<int>\d[\d,]*)?(?:\.(?P<frac>\d+))?"
    r"(?:\s+(?P<scale>thousand|million|billion|trillion)\b)?", re.IGNORECASE)
_PERCENT_RE = re.compile(r"(?P<num>-?\d[\d,]*(?:\.\d+)?)\s?%")
_ORDINAL_RE = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_TIME_RE = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
_NUMBER_RE = re.compile(r"(?P<sign>(?<![\w])-)?(?P<int>\d[\d,]*\d|\d)(?:\.(?P<frac>\d+))?")
_ABBREV_RE = re.compile(r"\b(" + "|".join(sorted(_ABBREVIATIONS, key=len, reverse=True))
                        + r")\.(?=\s|$|[,;:!?])", re.IGNORECASE)
_SAINT_RE = re.compile(r"\bSt\.(?=\s+[A-Z])")
_LATIN_RE = ((re.compile(r"\be\.g\.", re.IGNORECASE), " for example "),
             (re.compile(r"\bi\.e\.", re.IGNORECASE), " that is "),
             (re.compile(r"\ba\.m\.", re.IGNORECASE), " A M "),
             (re.compile(r"\bp\.m\.", re.IGNORECASE), " P M "))


def _percent(m: re.Match) -> str:
  num = m.group("num")
  return _NUMBER_RE.sub(_number, num) + " percent "


def normalize_text(text: str) -> str:
  """Spells out numbers, currency, abbreviations and symbols; see the module docstring.

  Case is kept (the g2p step uses it to spot acronyms). Pause punctuation is kept.
  """
  text = _transliterate(text)
  for pattern, repl in _LATIN_RE:
    text = pattern.sub(repl, text)
  text = _SAINT_RE.sub("Saint", text)
  text = re.sub(r"\bSt\.", "street", text)
  text = _ABBREV_RE.sub(lambda m: _ABBREVIATIONS[m.group(1).lower()], text)
  text = _CURRENCY_RE.sub(lambda m: _currency(m) if (m.group("int") or m.group("frac")) else
                          " ", text)
  text = _PERCENT_RE.sub(_percent, text)
  text = _ORDINAL_RE.sub(lambda m: " " + ordinal_words(int(m.group(1))) + " ", text)
  text = _TIME_RE.sub(_time, text)
  text = re.sub(r"(?:#|\bNo\.)\s?(?=\d)", " number ", text)
  text = _NUMBER_RE.sub(_number, text)
  text = (text.replace("&", " and ").replace("%", " percent ").replace("+", " plus ")
          .replace("=", " equals ").replace("@", " at "))
  text = re.sub(r"(?<=[A-Za-z])/(?=[A-Za-z])", " slash ", text)
  # Keep letters, apostrophes inside words, and pause punctuation; hyphens inside words split
  # them ("well-known" -> "well known"); a free-standing dash is a pause.
  text = re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", " ", text)
  text = re.sub(r"[()\[\]{}]|\s-+\s|--+", " , ", text)
  text = re.sub(r"[^A-Za-z0-9'.,;:!? ]", " ", text)
  return re.sub(r"\s+", " ", text).strip()
