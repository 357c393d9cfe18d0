" The tunelens commands for Vim: custom requests sent through ALE's connection to the server.

function! tunelens#Options() abort
  let l:o = {
  \ 'device': get(g:, 'tunelens_device', 'auto'),
  \ 'windowBars': get(g:, 'tunelens_window_bars', 4),
  \ 'genreField': get(g:, 'tunelens_genre_field', 'R'),
  \}
  if !empty(get(g:, 'tunelens_model_dir', ''))
    let l:o.modelDir = fnamemodify(expand(g:tunelens_model_dir), ':p:s?/$??')
  endif
  if !empty(get(g:, 'tunelens_db_path', ''))
    let l:o.dbPath = fnamemodify(expand(g:tunelens_db_path), ':p')
  endif
  if !empty(get(g:, 'tunelens_corpora', []))
    let l:o.corpora = map(copy(g:tunelens_corpora), 'fnamemodify(expand(v:val), '':p:s?/$??'')')
  endif
  return l:o
endfunction

" The project: the folder holding .git or .tunelens above the file, else the file's folder.
function! tunelens#Root(buffer) abort
  let l:dir = fnamemodify(bufname(a:buffer), ':p:h')
  for l:marker in ['.git', '.tunelens']
    let l:found = finddir(l:marker, l:dir . ';')
    if empty(l:found)
      let l:found = findfile(l:marker, l:dir . ';')
    endif
    if !empty(l:found)
      return fnamemodify(l:found, ':p:h:h')
    endif
  endfor
  return l:dir
endfunction

function! s:Uri(buffer) abort
  return ale#path#ToFileURI(fnamemodify(bufname(a:buffer), ':p'))
endfunction

" ABC is ASCII almost always, so the byte column is the UTF-16 one the server counts.
function! s:Position() abort
  return {'line': line('.') - 1, 'character': col('.') - 1}
endfunction

function! s:Send(method, params, Handler) abort
  let l:buffer = bufnr('')
  try
    call ale#lsp_linter#SendRequest(l:buffer, 'tunelens', [0, a:method, a:params], function('s:OnResponse', [a:method, a:Handler]))
  catch
    echohl ErrorMsg | echom 'tunelens: ' . v:exception | echohl None
  endtry
endfunction

function! s:OnResponse(method, Handler, response) abort
  if has_key(a:response, 'error')
    echohl ErrorMsg | echom 'tunelens: ' . a:method . ' failed: ' . get(a:response.error, 'message', string(a:response.error)) | echohl None
    return
  endif
  call a:Handler(get(a:response, 'result', v:null))
endfunction

function! s:Str(x) abort
  return type(a:x) == v:t_string ? a:x : ''
endfunction

" Quickfix items of server matches: place, title, score, where from and why.
function! tunelens#MatchItems(matches) abort
  let l:items = []
  for l:m in a:matches
    let l:where = join(filter([s:Str(get(l:m, 'corpus', '')), s:Str(get(l:m, 'collection', ''))], '!empty(v:val)'), '/')
    let l:title = empty(s:Str(get(l:m, 'title', ''))) ? '(untitled)' : l:m.title
    let l:text = printf('%s  %.2f', l:title, l:m.score) . (empty(l:where) ? '' : '  [' . l:where . ']')
    if !empty(s:Str(get(l:m, 'explanation', '')))
      let l:text .= '  ' . l:m.explanation
    endif
    call add(l:items, {
    \ 'filename': ale#path#FromFileURI(l:m.uri),
    \ 'lnum': l:m.range.start.line + 1,
    \ 'col': l:m.range.start.character + 1,
    \ 'text': l:text,
    \})
  endfor
  return l:items
endfunction

function! s:ToQuickfix(title, result) abort
  let l:matches = type(a:result) == v:t_dict ? get(a:result, 'matches', []) : []
  if empty(l:matches)
    echom 'tunelens: no matches for ' . a:title
    return
  endif
  call setqflist([], ' ', {'title': 'tunelens: ' . a:title, 'items': tunelens#MatchItems(l:matches)})
  copen
endfunction

function! tunelens#Similar() abort
  let l:params = {'textDocument': {'uri': s:Uri(bufnr(''))}, 'position': s:Position()}
  call s:Send('tunelens/similar', l:params, {r -> s:ToQuickfix('similar passages', r)})
endfunction

" How to open a file with the system's viewer: the setting (g:tunelens_open_cmd) is a command
" list or string that gets the path as its last argument; empty: xdg-open (open on macOS).
" Returns the argv list.
function! tunelens#OpenArgv(setting, path) abort
  let l:argv = type(a:setting) == v:t_list ? copy(a:setting)
  \ : type(a:setting) == v:t_string ? split(a:setting) : []
  if empty(l:argv)
    let l:argv = [has('mac') || has('macunix') ? 'open' : 'xdg-open']
  endif
  return add(l:argv, a:path)
endfunction

" Opens a file (the compare page) with g:tunelens_open_cmd or the system's opener.
function! tunelens#Open(path) abort
  let l:how = tunelens#OpenArgv(get(g:, 'tunelens_open_cmd', ''), a:path)
  if !executable(l:how[0])
    echohl WarningMsg | echom printf("tunelens: cannot open %s: '%s' is not executable (set g:tunelens_open_cmd)", a:path, l:how[0]) | echohl None
    return
  endif
  let l:job = job_start(l:how, {'in_io': 'null', 'out_io': 'null', 'err_io': 'null', 'stoponexit': ''})
  if job_status(l:job) ==# 'fail'
    echohl WarningMsg | echom 'tunelens: cannot open ' . a:path . ' with ' . join(l:how) | echohl None
  endif
endfunction

" tunelens/compare for the cursor's passage: the server's page (the passage and its matches
" engraved, self-contained) written to a temp .html file and opened in the browser.
function! tunelens#Compare() abort
  let l:params = {'textDocument': {'uri': s:Uri(bufnr(''))}, 'position': s:Position()}
  call s:Send('tunelens/compare', l:params, function('s:OnCompare'))
endfunction

function! s:OnCompare(result) abort
  if type(a:result) != v:t_dict || type(get(a:result, 'html', v:null)) != v:t_string
    echohl ErrorMsg | echom 'tunelens: tunelens/compare sent no page' | echohl None
    return
  endif
  let l:path = tempname() . '.html'
  " split() keeping empty items and writefile()'s 'b' give back the text byte for byte.
  if writefile(split(a:result.html, "\n", 1), l:path, 'b') != 0
    echohl ErrorMsg | echom 'tunelens: cannot write ' . l:path | echohl None
    return
  endif
  let g:tunelens_last_compare = l:path
  echom printf('tunelens: %d passages compared: %s', get(a:result, 'passages', 0), l:path)
  call tunelens#Open(l:path)
endfunction

function! tunelens#Search(text) abort
  call s:Send('tunelens/search', {'text': a:text, 'level': 'tune', 'k': 20}, {r -> s:ToQuickfix('"' . a:text . '"', r)})
endfunction

" The edit that sets field: to value in the header of the tune holding 0-based line at.
" Returns [line, end_line, text] (0-based, end exclusive) or [] when there is no such header.
function! tunelens#HeaderEdit(lines, at, field, value) abort
  let l:x = min([a:at, len(a:lines) - 1])
  while l:x >= 0 && a:lines[l:x] !~# '^X:'
    let l:x -= 1
  endwhile
  if l:x < 0
    return []
  endif
  let l:field = substitute(a:field, '[^A-Za-z]', '', 'g')
  for l:i in range(l:x + 1, len(a:lines) - 1)
    let l:l = a:lines[l:i]
    if l:l =~# '^\s*$' || l:l =~# '^X:'
      return []
    endif
    if l:l =~# '^' . l:field . ':'
      return [l:i, l:i + 1, l:field . ':' . a:value]
    endif
    if l:l =~# '^K:'
      return [l:i, l:i, l:field . ':' . a:value]
    endif
  endfor
  return []
endfunction

" The label set to score for a header field, as the server's lens and code action choose it:
" R: is the tune's rhythm (jig, reel, ...), any other field gets the genre set.
function! tunelens#LabelSet(field) abort
  return a:field[0] ==# 'R' ? 'rhythm' : 'genre'
endfunction

function! tunelens#TuneAt(tunes, line) abort
  for l:t in a:tunes
    if a:line >= l:t.range.start.line && a:line <= l:t.range.end.line
      return l:t
    endif
  endfor
  return empty(a:tunes) ? {} : a:tunes[0]
endfunction

function! tunelens#Genre() abort
  let l:buffer = bufnr('')
  let l:line = line('.') - 1
  call s:Send('tunelens/classify', {'textDocument': {'uri': s:Uri(l:buffer)},
  \ 'labelSet': tunelens#LabelSet(get(g:, 'tunelens_genre_field', 'R'))},
  \ {r -> s:OnGenre(l:buffer, l:line, r)})
endfunction

" g:tunelens_choose lets a script pick (tests); people get inputlist().
function! s:OnGenre(buffer, line, result) abort
  let l:tune = tunelens#TuneAt(type(a:result) == v:t_dict ? get(a:result, 'tunes', []) : [], a:line)
  if empty(l:tune) || empty(l:tune.labels)
    echom 'tunelens: no tune to classify here'
    return
  endif
  let l:labels = sort(copy(l:tune.labels), {a, b -> a.score < b.score ? 1 : a.score > b.score ? -1 : 0})
  let l:field = get(g:, 'tunelens_genre_field', 'R')
  let l:title = empty(s:Str(l:tune.title)) ? 'this tune' : l:tune.title
  if exists('g:tunelens_choose')
    let l:n = g:tunelens_choose
  else
    let l:menu = [printf('%s of "%s" (sets %s:)', tunelens#LabelSet(l:field), l:title, l:field)]
    for l:i in range(len(l:labels))
      call add(l:menu, printf('%d. %s  %.2f', l:i + 1, l:labels[l:i].label, l:labels[l:i].score))
    endfor
    let l:n = inputlist(l:menu)
  endif
  if l:n < 1 || l:n > len(l:labels)
    return
  endif
  let l:e = tunelens#HeaderEdit(getbufline(a:buffer, 1, '$'), l:tune.range.start.line, l:field, l:labels[l:n - 1].label)
  if empty(l:e)
    echom printf('tunelens: "%s" has no K: line to put %s: before', l:title, l:field)
    return
  endif
  if l:e[1] > l:e[0]
    call setbufline(a:buffer, l:e[0] + 1, l:e[2])
  else
    call appendbufline(a:buffer, l:e[0], l:e[2])
  endif
endfunction

function! tunelens#Status() abort
  call s:Send('tunelens/status', {}, function('s:OnStatus'))
endfunction

function! s:OnStatus(s) abort
  let l:m = type(get(a:s, 'model', v:null)) == v:t_dict ? printf('%s (%d-d)', a:s.model.name, a:s.model.dim) : 'no model'
  let l:parts = [printf('tunelens %s', get(a:s, 'serverVersion', '?')), l:m, get(a:s, 'device', '?')]
  for l:c in get(a:s, 'corpora', [])
    call add(l:parts, printf('%s: %d files, %d tunes, %d passages', l:c.name, l:c.files, l:c.tunes, l:c.passages))
  endfor
  if get(a:s, 'indexing', v:false)
    call add(l:parts, 'indexing')
  endif
  echom join(l:parts, ' · ')
endfunction

function! tunelens#Index(dir) abort
  let l:path = fnamemodify(empty(a:dir) ? getcwd() : a:dir, ':p:s?/$??')
  call s:Send('tunelens/reindex', {'uri': ale#path#ToFileURI(l:path)}, function('s:OnIndex', [l:path]))
endfunction

function! s:OnIndex(path, result) abort
  echom 'tunelens: indexing ' . a:path
endfunction
