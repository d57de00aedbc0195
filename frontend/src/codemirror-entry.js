// Entry point of the CodeMirror 6 bundle served as static/vendor/codemirror.js.
// Only what the notebook pages need is re-exported; esbuild tree-shakes the rest.
export { basicSetup, minimalSetup } from "codemirror";
export {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter,
  highlightSpecialChars, drawSelection, dropCursor, rectangularSelection,
  crosshairCursor, placeholder, ViewPlugin, Decoration,
} from "@codemirror/view";
export {
  EditorState, EditorSelection, Compartment, Prec, StateEffect, StateField, ChangeSet,
  Transaction,
} from "@codemirror/state";
export {
  defaultKeymap, history, historyKeymap, indentWithTab, undo, redo,
  insertNewlineAndIndent,
} from "@codemirror/commands";
export {
  syntaxHighlighting, defaultHighlightStyle, HighlightStyle, indentOnInput,
  bracketMatching, foldGutter, foldKeymap, indentUnit,
} from "@codemirror/language";
export {
  closeBrackets, closeBracketsKeymap, autocompletion, completionKeymap,
  startCompletion, closeCompletion, completionStatus,
} from "@codemirror/autocomplete";
export {
  highlightSelectionMatches, search, searchKeymap, openSearchPanel,
  closeSearchPanel, searchPanelOpen,
} from "@codemirror/search";
export { python, pythonLanguage } from "@codemirror/lang-python";
export { tags } from "@lezer/highlight";
// The changes between two texts: a remote edit applied as a mapped change (page/live.js).
export { diff, presentableDiff } from "@codemirror/merge";
