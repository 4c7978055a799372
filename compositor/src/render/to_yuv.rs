//! Colour conversion on the GPU: a GLES pass that turns the composited RGBA target into the
//! YUV layout the encoder reads, so only 1.5 bytes a pixel (4:2:0) come back from the GPU
//! instead of 4, and the CPU converts nothing.
//!
//! Every plane is drawn into one RGBA8 texture, stacked top to bottom, each texel holding four
//! bytes of the plane (four 8-bit samples or two 16-bit ones); reading a plane's rows back
//! gives exactly its bytes. Written against raw GLES 2 (smithay's renderer has no pass with a
//! sampled input and a custom output layout); GL state it touches is put back as smithay
//! expects it.

use punktfunk_frame::Colour;
use punktfunk_frame::layout::Layout;
use punktfunk_frame::layout::{PlaneGeometry, Samples};
use smithay::backend::renderer::gles::{ffi, link_program};
use std::ops::Range;

const VERTEX: &str = "#version 100
attribute vec2 position;
void main() { gl_Position = vec4(position, 0.0, 1.0); }
";

/// A quad over the whole viewport.
const QUAD: [f32; 8] = [-1.0, -1.0, 1.0, -1.0, -1.0, 1.0, 1.0, 1.0];

/// Rows to convert: even bounds within the picture.
fn check_rows(rows: &Range<u32>, height: u32) -> Result<(), String> {
    if rows.start >= rows.end || rows.end > height || !rows.start.is_multiple_of(2) || !rows.end.is_multiple_of(2) {
        return Err(format!("rows {rows:?} of a {height}-row picture"));
    }
    Ok(())
}

/// Per texel: four 8-bit or two 16-bit samples (slots), each of a component (0 Y, 1 U, 2 V)
/// at a sample column `texel * step + offset`; a sample averages `sub` picture pixels across
/// and down.
const FRAGMENT: &str = "#version 100
precision highp float;
uniform sampler2D src;
uniform vec2 src_size;
uniform vec2 origin;
uniform vec2 sub;
uniform vec4 comps;
uniform vec4 offs;
uniform float step;
uniform float wide;
uniform float scale16;
uniform mat3 coeffs;
uniform vec3 offsets;
uniform float max_value;

vec3 rgb(vec2 p) {
    return texture2D(src, (min(p, src_size - 1.0) + 0.5) / src_size).rgb;
}

/// The code values (Y, U, V) of the sample at (column, row) of a plane.
vec3 yuv(float column, float row) {
    vec2 p = vec2(column, row) * sub;
    vec3 c = rgb(p);
    if (sub.x > 1.0) {
        c = (c + rgb(p + vec2(1.0, 0.0)) + rgb(p + vec2(0.0, 1.0)) + rgb(p + vec2(1.0, 1.0))) * 0.25;
    }
    return clamp(floor(coeffs * c + offsets + 0.5), 0.0, max_value);
}

float pick(vec3 v, float comp) {
    return dot(v, vec3(equal(vec3(comp), vec3(0.0, 1.0, 2.0))));
}

// Bytes are written as (k + 1/4) / 255: exactly k whether the driver rounds or truncates.
vec2 bytes16(float v) {
    float s = v * scale16;
    float hi = floor(s / 256.0);
    return (vec2(s - hi * 256.0, hi) + 0.25) / 255.0;
}

void main() {
    vec2 t = floor(gl_FragCoord.xy - origin);
    float x = t.x * step;
    // Interleaved U and V share a position: computed once for both.
    vec3 a = yuv(x + offs.x, t.y);
    vec3 b = offs.y == offs.x ? a : yuv(x + offs.y, t.y);
    if (wide > 0.5) {
        gl_FragColor = vec4(bytes16(pick(a, comps.x)), bytes16(pick(b, comps.y)));
    } else {
        vec3 c = offs.z == offs.x ? a : yuv(x + offs.z, t.y);
        vec3 d = offs.w == offs.z ? c : yuv(x + offs.w, t.y);
        gl_FragColor = (vec4(pick(a, comps.x), pick(b, comps.y), pick(c, comps.z), pick(d, comps.w)) + 0.25) / 255.0;
    }
}
";

type Location = ffi::types::GLint;

/// Where the shader's inputs are.
struct Uniforms {
    src: Location,
    src_size: Location,
    origin: Location,
    sub: Location,
    comps: Location,
    offs: Location,
    step: Location,
    wide: Location,
    scale16: Location,
    coeffs: Location,
    offsets: Location,
    max_value: Location,
}

pub struct ToYuv {
    program: ffi::types::GLuint,
    position: ffi::types::GLuint,
    uniforms: Uniforms,
    /// smithay draws instanced (it sets attribute divisors and leaves them set).
    instancing: bool,
    target: Option<Target>,
}

/// The texture the planes are drawn into, for one layout and size.
struct Target {
    texture: ffi::types::GLuint,
    fbo: ffi::types::GLuint,
    key: (Layout, u32, u32),
    planes: Vec<PlaneGeometry>,
}

impl ToYuv {
    /// Compiles the pass for a renderer that draws `instancing` or not; an error means this
    /// GPU cannot run it (the CPU converts instead).
    pub fn new(gl: &ffi::Gles2, instancing: bool) -> Result<Self, String> {
        // SAFETY: the caller made the renderer's context current (`with_context`); the
        // pointers GL writes through point at locals of the types it writes.
        unsafe {
            // 16-bit samples and 4K coordinates need real 32-bit floats: GLES 2 promises
            // only 16-bit ones in fragment shaders.
            let (mut range, mut precision) = ([0; 2], 0);
            gl.GetShaderPrecisionFormat(ffi::FRAGMENT_SHADER, ffi::HIGH_FLOAT, range.as_mut_ptr(), &mut precision);
            if precision < 23 {
                return Err(format!("fragment shaders have {precision}-bit float precision, not 23"));
            }
            let program = link_program(gl, VERTEX, FRAGMENT).map_err(|e| format!("the conversion shader: {e}"))?;
            let find = |name: &std::ffi::CStr| gl.GetUniformLocation(program, name.as_ptr().cast());
            let uniforms = Uniforms {
                src: find(c"src"),
                src_size: find(c"src_size"),
                origin: find(c"origin"),
                sub: find(c"sub"),
                comps: find(c"comps"),
                offs: find(c"offs"),
                step: find(c"step"),
                wide: find(c"wide"),
                scale16: find(c"scale16"),
                coeffs: find(c"coeffs"),
                offsets: find(c"offsets"),
                max_value: find(c"max_value"),
            };
            let u = &uniforms;
            let all = [u.src, u.src_size, u.origin, u.sub, u.comps, u.offs, u.step, u.wide, u.scale16, u.coeffs, u.offsets, u.max_value];
            let position = gl.GetAttribLocation(program, c"position".as_ptr().cast());
            if position < 0 || all.contains(&-1) {
                gl.DeleteProgram(program);
                return Err("the conversion shader lost an input".into());
            }
            Ok(Self { program, position: position as u32, uniforms, instancing, target: None })
        }
    }

    /// Converts `rows` (even bounds) of the `width`×`height` picture in texture `source` into
    /// `out`, laid out as `layout.planes` says, in `colour`; the rest of `out` is left as it is.
    #[allow(clippy::too_many_arguments)]
    pub fn convert(
        &mut self,
        gl: &ffi::Gles2,
        source: ffi::types::GLuint,
        width: u32,
        height: u32,
        layout: Layout,
        colour: Colour,
        rows: Range<u32>,
        out: &mut [u8],
    ) -> Result<(), String> {
        if out.len() < layout.frame_len(width, height) {
            return Err("the frame buffer is smaller than the picture".into());
        }
        check_rows(&rows, height)?;
        let target = self.target(gl, layout, width, height)?;
        let (fbo, planes) = (target.fbo, target.planes.clone());
        // SAFETY: the caller made the context current; every pointer handed to GL points into
        // live memory of the size GL is told, and `out` holds each plane (checked above).
        unsafe {
            gl.BindFramebuffer(ffi::FRAMEBUFFER, fbo);
            self.begin(gl, source, width, height, layout, colour);
            let mut top = 0;
            for plane in &planes {
                let texels = (plane.stride / 4) as i32;
                let (first, last) = self.draw(gl, plane, Packing::Bytes, top, texels, &rows);
                let at = plane.offset + first as usize * plane.stride;
                gl.ReadPixels(0, top + first, texels, last - first, ffi::RGBA, ffi::UNSIGNED_BYTE, out[at..].as_mut_ptr().cast());
                top += plane.rows as i32;
            }
            gl.BindFramebuffer(ffi::FRAMEBUFFER, 0);
            self.end(gl, layout)
        }
    }

    /// Draws `rows` (even bounds) of plane `plane` (0 luma, 1 chroma) of NV12 into the bound
    /// framebuffer, one sample (luma, an R8 target) or U and V (chroma: U in red, V in green,
    /// or the other way round with `swap_uv`) a pixel: an encoder's surface imported as two
    /// dmabufs.
    #[allow(clippy::too_many_arguments)]
    pub fn draw_nv12_plane(
        &mut self,
        gl: &ffi::Gles2,
        source: ffi::types::GLuint,
        width: u32,
        height: u32,
        colour: Colour,
        plane: usize,
        swap_uv: bool,
        rows: Range<u32>,
    ) -> Result<(), String> {
        check_rows(&rows, height)?;
        let planes = Layout::Nv12.planes(width, height);
        let plane = planes.get(plane).ok_or("NV12 has two planes")?;
        // SAFETY: the caller made the context current, with the plane's target bound.
        unsafe {
            self.begin(gl, source, width, height, Layout::Nv12, colour);
            self.draw(gl, plane, Packing::Texels { swap_uv }, 0, (width / plane.subsampling) as i32, &rows);
            self.end(gl, Layout::Nv12)
        }
    }

    /// Program, source and colour for the planes to come.
    ///
    /// # Safety
    /// The renderer's context is current; `end` follows the draws.
    unsafe fn begin(&self, gl: &ffi::Gles2, source: ffi::types::GLuint, width: u32, height: u32, layout: Layout, colour: Colour) {
        let bits = if layout.ten_bit() { 10 } else { 8 };
        let c = colour.coefficients(bits);
        // GLES 2 takes matrices column by column only.
        let columns: Vec<f32> =
            (0..3).flat_map(|col| (0..3).map(move |row| (col, row))).map(|(col, row)| c.rows[row][col] as f32).collect();
        let shift = layout.planes(2, 2)[0].shift;
        let u = &self.uniforms;
        // SAFETY: the context is current (the caller's promise); the pointers handed to GL
        // point at a live local and a static.
        unsafe {
            // Errors left from before are not this pass's.
            for _ in 0..16 {
                if gl.GetError() == ffi::NO_ERROR {
                    break;
                }
            }
            gl.UseProgram(self.program);
            gl.ActiveTexture(ffi::TEXTURE0);
            gl.BindTexture(ffi::TEXTURE_2D, source);
            // Samples are read at texel centres: no filtering between pixels.
            gl.TexParameteri(ffi::TEXTURE_2D, ffi::TEXTURE_MIN_FILTER, ffi::NEAREST as i32);
            gl.TexParameteri(ffi::TEXTURE_2D, ffi::TEXTURE_MAG_FILTER, ffi::NEAREST as i32);
            gl.Uniform1i(u.src, 0);
            gl.Uniform2f(u.src_size, width as f32, height as f32);
            gl.UniformMatrix3fv(u.coeffs, 1, ffi::FALSE, columns.as_ptr());
            gl.Uniform3f(u.offsets, c.offsets[0] as f32, c.offsets[1] as f32, c.offsets[2] as f32);
            gl.Uniform1f(u.max_value, c.max as f32);
            gl.Uniform1f(u.scale16, (1u32 << shift) as f32);
            gl.Uniform1f(u.wide, if bits > 8 { 1.0 } else { 0.0 });
            gl.BindBuffer(ffi::ARRAY_BUFFER, 0);
            gl.EnableVertexAttribArray(self.position);
            gl.VertexAttribPointer(self.position, 2, ffi::FLOAT, ffi::FALSE, 0, QUAD.as_ptr().cast());
            // smithay leaves its attribute slots' divisors set: ours may share a slot, and
            // must advance per vertex.
            if self.instancing {
                gl.VertexAttribDivisor(self.position, 0);
            }
            gl.Disable(ffi::BLEND);
            gl.Disable(ffi::DITHER);
            gl.Enable(ffi::SCISSOR_TEST);
        }
    }

    /// Draws the plane's rows under picture `rows` into the bound framebuffer, the plane
    /// starting at row `top`, `texels` wide; returns the plane rows drawn.
    ///
    /// # Safety
    /// Between `begin` and `end`.
    unsafe fn draw(
        &self,
        gl: &ffi::Gles2,
        plane: &PlaneGeometry,
        packing: Packing,
        top: i32,
        texels: i32,
        rows: &Range<u32>,
    ) -> (i32, i32) {
        let u = &self.uniforms;
        let (comps, offs, step) = slots(plane, packing);
        let sub = plane.subsampling as f32;
        let (first, last) = ((rows.start / plane.subsampling) as i32, rows.end.div_ceil(plane.subsampling) as i32);
        // SAFETY: between `begin` and `end` (the caller's promise): the quad set in `begin`
        // is still bound.
        unsafe {
            gl.Uniform2f(u.origin, 0.0, top as f32);
            gl.Uniform2f(u.sub, sub, sub);
            gl.Uniform4f(u.comps, comps[0], comps[1], comps[2], comps[3]);
            gl.Uniform4f(u.offs, offs[0], offs[1], offs[2], offs[3]);
            gl.Uniform1f(u.step, step);
            gl.Viewport(0, top, texels, plane.rows as i32);
            gl.Scissor(0, top + first, texels, last - first);
            gl.DrawArrays(ffi::TRIANGLE_STRIP, 0, 4);
        }
        (first, last)
    }

    /// Puts back what smithay expects and says whether GL saw an error.
    ///
    /// # Safety
    /// After `begin`, in the same current context.
    unsafe fn end(&self, gl: &ffi::Gles2, layout: Layout) -> Result<(), String> {
        // SAFETY: the context is current (the caller's promise); plain GL state.
        unsafe {
            gl.Disable(ffi::SCISSOR_TEST);
            gl.Enable(ffi::DITHER); // GL's default, as smithay expects it
            gl.DisableVertexAttribArray(self.position);
            gl.BindTexture(ffi::TEXTURE_2D, 0);
            gl.UseProgram(0);
            match gl.GetError() {
                ffi::NO_ERROR => Ok(()),
                e => Err(format!("GL error {e:#x} converting to {layout}")),
            }
        }
    }

    /// The target for `layout` at this size, made anew when either changed.
    fn target(&mut self, gl: &ffi::Gles2, layout: Layout, width: u32, height: u32) -> Result<&Target, String> {
        let key = (layout, width, height);
        if self.target.as_ref().is_some_and(|t| t.key != key) {
            self.release_target(gl);
        }
        if self.target.is_none() {
            let planes = layout.planes(width, height);
            let texels = planes.iter().map(|p| p.stride / 4).max().unwrap_or(1) as i32;
            let rows = planes.iter().map(|p| p.rows).sum::<usize>() as i32;
            // SAFETY: the caller made the context current; the texture is allocated by GL.
            let (texture, fbo, complete) = unsafe {
                let (mut texture, mut fbo) = (0, 0);
                gl.GenTextures(1, &mut texture);
                gl.BindTexture(ffi::TEXTURE_2D, texture);
                gl.TexImage2D(ffi::TEXTURE_2D, 0, ffi::RGBA as i32, texels, rows, 0, ffi::RGBA, ffi::UNSIGNED_BYTE, std::ptr::null());
                gl.BindTexture(ffi::TEXTURE_2D, 0);
                gl.GenFramebuffers(1, &mut fbo);
                gl.BindFramebuffer(ffi::FRAMEBUFFER, fbo);
                gl.FramebufferTexture2D(ffi::FRAMEBUFFER, ffi::COLOR_ATTACHMENT0, ffi::TEXTURE_2D, texture, 0);
                let complete = gl.CheckFramebufferStatus(ffi::FRAMEBUFFER) == ffi::FRAMEBUFFER_COMPLETE;
                gl.BindFramebuffer(ffi::FRAMEBUFFER, 0);
                (texture, fbo, complete)
            };
            self.target = Some(Target { texture, fbo, key, planes });
            if !complete {
                self.release_target(gl);
                return Err(format!("no {texels}x{rows} target for {layout}"));
            }
        }
        Ok(self.target.as_ref().expect("made above"))
    }

    fn release_target(&mut self, gl: &ffi::Gles2) {
        if let Some(t) = self.target.take() {
            // SAFETY: the caller made the context current; both names are ours.
            unsafe {
                gl.DeleteFramebuffers(1, &t.fbo);
                gl.DeleteTextures(1, &t.texture);
            }
        }
    }

    /// Frees what GL holds for the pass (the context must be current).
    pub fn destroy(&mut self, gl: &ffi::Gles2) {
        self.release_target(gl);
        // SAFETY: the program is ours; the caller made the context current.
        unsafe { gl.DeleteProgram(self.program) };
    }
}

/// How a plane's samples lie in the target's texels.
#[derive(Clone, Copy)]
enum Packing {
    /// Four bytes of the plane to an RGBA8 texel (read back as the plane's bytes).
    Bytes,
    /// A texel per sample position: R8 for luma, two channels for chroma (U in red, V in
    /// green, unless swapped).
    Texels { swap_uv: bool },
}

/// Each texel slot's component (0 Y, 1 U, 2 V) and sample column offset, and how many sample
/// columns a texel advances, for a plane.
fn slots(plane: &PlaneGeometry, packing: Packing) -> ([f32; 4], [f32; 4], f32) {
    let one = |c: f32| [c; 4];
    match (plane.samples, plane.bytes_per_sample, packing) {
        (Samples::Uv, _, Packing::Texels { swap_uv: false }) => ([1.0, 2.0, 1.0, 2.0], [0.0; 4], 1.0),
        (Samples::Uv, _, Packing::Texels { swap_uv: true }) => ([2.0, 1.0, 2.0, 1.0], [0.0; 4], 1.0),
        (_, _, Packing::Texels { .. }) => (one(0.0), [0.0; 4], 1.0),
        (Samples::Uv, 1, _) => ([1.0, 2.0, 1.0, 2.0], [0.0, 0.0, 1.0, 1.0], 2.0),
        (Samples::Uv, _, _) => ([1.0, 2.0, 0.0, 0.0], [0.0; 4], 1.0),
        (s, bytes, _) => {
            let comp = match s {
                Samples::U => 1.0,
                Samples::V => 2.0,
                _ => 0.0,
            };
            (one(comp), [0.0, 1.0, 2.0, 3.0], if bytes == 1 { 4.0 } else { 2.0 })
        }
    }
}
