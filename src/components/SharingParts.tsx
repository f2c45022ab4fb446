/**
 * Small pieces the sharing views share: counts in words and a load failure with a retry.
 */

/** "No flows yet", "1 flow", "3 flows". */
export function countWords(count: number, noun: string): string {
  return count === 0 ? `No ${noun}s yet.` : `${count} ${noun}${count === 1 ? "" : "s"}.`;
}

/** A load failure with a retry button. */
export function LoadError(props: { message: string; retry(): void }) {
  return (
    <div className="load-error" role="alert">
      <p>{props.message}</p>
      <button type="button" className="secondary" onClick={props.retry}>Try again</button>
    </div>
  );
}
