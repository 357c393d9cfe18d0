" tunelens for Vim 9, over ALE (Debian's vim-ale): ALE runs `tunelens lsp` for abc buffers and
" gives hover (:ALEHover), references (:ALEFindReferences), code actions (:ALECodeAction) and
" diagnostics; this file adds the tunelens commands that standard LSP has no verb for.
if exists('g:loaded_tunelens')
  finish
endif
let g:loaded_tunelens = 1

" Settings (set them before this file is sourced, e.g. in your vimrc):
"   g:tunelens_cmd          ['tunelens', 'lsp']
"   g:tunelens_model_dir    CLaMP checkpoint directory ('' : the server's default, TUNELENS_MODEL)
"   g:tunelens_device       'auto' | 'cpu' | 'cuda'
"   g:tunelens_corpora      folders of ABC files to compare against
"   g:tunelens_window_bars  4
"   g:tunelens_genre_field  'R'
"   g:tunelens_db_path      ''
"   g:tunelens_keymaps      1: K is :ALEHover in abc buffers
"   g:tunelens_open_cmd     what opens :TunelensCompare's page: a command list or string (the
"                           file is added last); '' : xdg-open (open on macOS)
let g:tunelens_cmd = get(g:, 'tunelens_cmd', ['tunelens', 'lsp'])
let g:tunelens_keymaps = get(g:, 'tunelens_keymaps', 1)

if !exists('*ale#linter#Define') && empty(globpath(&runtimepath, 'autoload/ale/linter.vim'))
  echohl WarningMsg | echom 'tunelens: ALE is not loaded (apt install vim-ale, then :packadd ale before this plugin)' | echohl None
  finish
endif

call ale#linter#Define('abc', {
\   'name': 'tunelens',
\   'lsp': 'stdio',
\   'executable': {buffer -> g:tunelens_cmd[0]},
\   'command': {buffer -> join(map(copy(g:tunelens_cmd), 'ale#Escape(v:val)'), ' ')},
\   'project_root': function('tunelens#Root'),
\   'initialization_options': {buffer -> tunelens#Options()},
\   'lsp_config': {buffer -> {'tunelens': tunelens#Options()}},
\})

command! TunelensSimilar call tunelens#Similar()
command! TunelensCompare call tunelens#Compare()
command! -nargs=+ TunelensSearch call tunelens#Search(<q-args>)
command! TunelensGenre call tunelens#Genre()
command! TunelensStatus call tunelens#Status()
command! -nargs=? -complete=dir TunelensIndex call tunelens#Index(<q-args>)

augroup tunelens
  autocmd!
  autocmd FileType abc if g:tunelens_keymaps | nnoremap <buffer> <silent> K :ALEHover<CR> | endif
augroup END
