/**
 * The title a thread gets from the message that created it: the start of the content, at most
 * `AUTO_TITLE_UNITS` UTF-16 units, cut between two characters as a reader sees them (grapheme
 * clusters). A cut inside a surrogate pair would leave a lone surrogate, which the drivers turn into
 * U+FFFD; a cut inside an emoji sequence (a flag, a family joined by ZWJ) would leave half of it.
 */
export const AUTO_TITLE_UNITS = 80;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

export function autoTitle(content: string): string {
  if (content.length <= AUTO_TITLE_UNITS) return content;
  let end = 0;
  // Lazy: only the clusters up to the cut are looked at, however long the content.
  for (const { segment, index } of graphemes.segment(content)) {
    if (index + segment.length > AUTO_TITLE_UNITS) break;
    end = index + segment.length;
  }
  if (end === 0) {
    // One cluster longer than the whole title (a letter under a pile of combining marks): cut it
    // between two code points instead.
    end = AUTO_TITLE_UNITS;
    const last = content.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  }
  return content.slice(0, end);
}
