/**
 * Aligns tab-separated text into columns with the rules of Go's text/tabwriter, which the docker CLI
 * uses for its tables: a cell is text terminated by a tab (the text after a line's last tab is not
 * a cell and is never padded); a column block is a run of consecutive lines that have a cell in that
 * column, and every cell of a block is padded to the block's widest cell plus `padding`, but to no
 * less than `minWidth`.
 */
export interface TabwriterOptions {
  minWidth: number;
  padding: number;
}

/** docker's table formatting: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`. */
export const TABLE: TabwriterOptions = { minWidth: 10, padding: 3 };

/** Display width of a cell: Go's tabwriter counts runes (UTF-8 code points). */
const width = (text: string) => [...text].length;

export function alignColumns(text: string, options: TabwriterOptions = TABLE): string {
  const endsWithNewline = text.endsWith("\n");
  const lines = (endsWithNewline ? text.slice(0, -1) : text).split("\n").map((line) => line.split("\t"));
  const out: string[] = [];
  const widths: number[] = [];

  const writeLines = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const cells = lines[i] as string[];
      let line = "";
      cells.forEach((cell, j) => {
        const last = j === cells.length - 1;
        const columnWidth = widths[j];
        line += !last && columnWidth !== undefined ? cell + " ".repeat(Math.max(0, columnWidth - width(cell))) : cell;
      });
      out.push(line);
    }
  };

  // Go's Writer.format: find each column block, fix its width, then format the columns right of it.
  const format = (line0: number, line1: number) => {
    const column = widths.length;
    let start = line0;
    for (let current = line0; current < line1; current++) {
      if (column >= (lines[current] as string[]).length - 1) continue;
      writeLines(start, current);
      start = current;
      let blockWidth = options.minWidth;
      for (; current < line1; current++) {
        const cells = lines[current] as string[];
        if (column >= cells.length - 1) break;
        blockWidth = Math.max(blockWidth, width(cells[column] as string) + options.padding);
      }
      widths.push(blockWidth);
      format(start, current);
      widths.pop();
      start = current;
      current--; // the loop's increment revisits the line that ended the block
    }
    writeLines(start, line1);
  };
  format(0, lines.length);
  return out.join("\n") + (endsWithNewline ? "\n" : "");
}
