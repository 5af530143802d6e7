/** Vite's `?raw` import: the file's text (the README, for the tests that hold it to the code). */
declare module "*?raw" {
  const text: string;
  export default text;
}
