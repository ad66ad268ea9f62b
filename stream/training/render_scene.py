"""Blender side of ``carcolor synth``: builds and renders the scenes a job file describes.

Runs inside Blender 3.4+ (``blender -b --factory-startup --python render_scene.py -- JOB.json``),
never in the package's own interpreter: it imports ``bpy``. Every random choice was made
beforehand by :mod:`stream.training.synth` and is in the job file, so a render is fully
described by its manifest row; this script only turns a description into pixels.

Per sample it writes a linear Radiance ``.hdr`` (no tone curve, no clipping: exposure,
white balance and the tone curve are applied afterwards in Python) and, in
``<job>.boxes.jsonl``, the target car's silhouette box in pixels and the fraction of the
car's projected vertices hidden by a neighbour.
"""
import json
import math
import sys

try:                       # Blender's own modules: this file runs inside Blender only
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Euler, Vector
except ImportError:        # imported elsewhere (docs, test collection): nothing to run
    bpy = None

JOB: dict = {}
np = None                  # numpy, from the path the job names (Blender's Python has none)


def _load_job():
    global JOB, np
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    if not argv:
        raise SystemExit("render_scene.py: usage: blender -b --python render_scene.py -- JOB.json")
    JOB = json.load(open(argv[0]))
    for p in JOB.get("sys_path", []):
        if p not in sys.path:
            sys.path.append(p)
    import numpy
    np = numpy
    return argv[0]


# ---------------------------------------------------------------- materials
def principled(name, color, metallic=0.0, roughness=0.5, clearcoat=0.0, clearcoat_roughness=0.03,
               transmission=0.0, ior=1.45, specular=0.5):
    m = bpy.data.materials.new(name)
    m.use_nodes = True
    b = m.node_tree.nodes["Principled BSDF"]
    b.inputs["Base Color"].default_value = (*color, 1.0)
    b.inputs["Metallic"].default_value = metallic
    b.inputs["Roughness"].default_value = roughness
    b.inputs["Clearcoat"].default_value = clearcoat
    b.inputs["Clearcoat Roughness"].default_value = clearcoat_roughness
    b.inputs["Transmission"].default_value = transmission
    b.inputs["IOR"].default_value = ior
    b.inputs["Specular"].default_value = specular
    return m


def paint_material(p):
    return principled("paint", p["rgb_linear"], p["metallic"], p["roughness"], p["clearcoat"],
                      p["clearcoat_roughness"])


def glass_material(tint):
    # Dark, glossy: car glass seen from outside is mostly a reflection over a dark cabin.
    return principled("glass", tint, 0.0, 0.03, 0.0, specular=0.9)


RUBBER = None
TRIM = None


def shared_materials():
    global RUBBER, TRIM
    if RUBBER is None:
        RUBBER = principled("rubber", (0.018, 0.018, 0.02), 0.0, 0.8)
        TRIM = principled("trim", (0.03, 0.03, 0.032), 0.0, 0.45)
    return RUBBER, TRIM


# ---------------------------------------------------------------- model cars (Kenney kit)
_MODEL_CACHE = {}


def _face_classes(body):
    """Per face of a Kenney body: 'paint', 'glass', 'dark' or 'keep', from its palette texel."""
    tex = [n for n in body.data.materials[0].node_tree.nodes if n.type == "TEX_IMAGE"][0].image
    w, h = tex.size
    px = np.array(tex.pixels[:], dtype=np.float32).reshape(h, w, 4)[..., :3]
    uv = body.data.uv_layers.active.data
    cols, areas = [], []
    for poly in body.data.polygons:
        u = sum(uv[i].uv[0] for i in poly.loop_indices) / poly.loop_total
        v = sum(uv[i].uv[1] for i in poly.loop_indices) / poly.loop_total
        cols.append(px[min(h - 1, max(0, int(v * h))), min(w - 1, max(0, int(u * w)))])
        areas.append(poly.area)
    cols, areas = np.array(cols), np.array(areas)
    mx, mn = cols.max(1), cols.min(1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0)
    # hue of each texel (degrees)
    r, g, b = cols[:, 0], cols[:, 1], cols[:, 2]
    hue = (np.degrees(np.arctan2(math.sqrt(3) * (g - b), 2 * r - g - b)) + 360) % 360
    saturated = sat > 0.3
    classes = np.array(["keep"] * len(cols), dtype=object)
    if saturated.any():
        hist, edges = np.histogram(hue[saturated], bins=24, range=(0, 360), weights=areas[saturated])
        k = int(np.argmax(hist))
        centre = (edges[k] + edges[k + 1]) / 2
        dh = np.abs((hue - centre + 180) % 360 - 180)
        classes[saturated & (dh < 30)] = "paint"
    bluegray = (~saturated) & (b > r) & (mx > 0.25) & (mx < 0.65)
    classes[bluegray & (classes == "keep")] = "glass"
    classes[(mx < 0.3) & (classes == "keep")] = "dark"
    return classes


def load_model(path):
    """Import a Kenney GLB once; returns its objects (hidden), body first."""
    if path in _MODEL_CACHE:
        return _MODEL_CACHE[path]
    before = set(bpy.data.objects)
    bpy.ops.import_scene.gltf(filepath=path)
    objs = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    body = next(o for o in objs if o.name.startswith("body"))
    classes = _face_classes(body)
    for o in objs:
        o.hide_render = True
        o.hide_viewport = True
    _MODEL_CACHE[path] = (body, [o for o in objs if o is not body], classes)
    return _MODEL_CACHE[path]


def instance_model(spec, collection):
    body, wheels, classes = load_model(spec["model_path"])
    paint = paint_material(spec["paint"])
    glass = glass_material(spec["glass_tint"])
    rubber, trim = shared_materials()
    parts = []
    new_body = body.copy()
    new_body.data = body.data.copy()
    me = new_body.data
    keep = me.materials[0]
    me.materials.clear()
    for m in (keep, paint, glass, trim):
        me.materials.append(m)
    index = {"keep": 0, "paint": 1, "glass": 2, "dark": 3}
    for poly, c in zip(me.polygons, classes):
        poly.material_index = index[c]
    parts.append(new_body)
    for w in wheels:
        nw = w.copy()
        nw.data = w.data.copy()
        nw.data.materials.clear()
        nw.data.materials.append(rubber)
        parts.append(nw)
    root = bpy.data.objects.new("car", None)
    collection.objects.link(root)
    # Kenney cars: length along Y, about 2.6 units; scale to the sampled real length.
    length_units = max(body.dimensions.y, 1e-3)
    s = spec["length"] / length_units
    for o in parts:
        collection.objects.link(o)
        o.hide_render = False
        o.parent = root
    root.scale = (s * spec.get("width_scale", 1.0), s, s * spec.get("height_scale", 1.0))
    return root, parts


# ---------------------------------------------------------------- procedural cars
def _box(name, size, loc, collection, bevel=0.0, segments=3):
    me = bpy.data.meshes.new(name)
    sx, sy, sz = (v / 2 for v in size)
    verts = [(x, y, z) for x in (-sx, sx) for y in (-sy, sy) for z in (-sz, sz)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    me.from_pydata(verts, [], faces)
    o = bpy.data.objects.new(name, me)
    o.location = loc
    collection.objects.link(o)
    if bevel > 0:
        mod = o.modifiers.new("bevel", "BEVEL")
        mod.width = bevel
        mod.segments = segments
        mod.limit_method = "NONE"
    return o


def _taper(o, top_scale_x, top_scale_y, shift_y):
    """Narrow the top face of a box (a greenhouse or a sloped bonnet)."""
    for v in o.data.vertices:
        if v.co.z > 0:
            v.co.x *= top_scale_x
            v.co.y = v.co.y * top_scale_y + shift_y


def instance_procedural(spec, collection):
    """A curved-shell car: bevelled lower body, tapered greenhouse, painted roof, four wheels."""
    paint = paint_material(spec["paint"])
    glass = glass_material(spec["glass_tint"])
    rubber, trim = shared_materials()
    L, W = spec["length"], spec["width"]
    hb, hc = spec["body_height"], spec["cabin_height"]
    clear = spec["ground_clearance"]
    wheel_r = spec["wheel_radius"]
    root = bpy.data.objects.new("car", None)
    collection.objects.link(root)
    parts = []
    body = _box("body", (W, L, hb), (0, 0, clear + hb / 2), collection, bevel=min(hb, W) * spec["roundness"])
    body.data.materials.append(paint)
    parts.append(body)
    cl, cy = spec["cabin_length"] * L, spec["cabin_offset"] * L
    if spec["kind"] == "pickup":
        bed = _box("bed_wall", (W * 0.98, L * 0.36, hc * 0.35), (0, -L * 0.30, clear + hb + hc * 0.17),
                   collection, bevel=0.03)
        bed.data.materials.append(paint)
        parts.append(bed)
    cabin = _box("cabin", (W * 0.9, cl, hc), (0, cy, clear + hb + hc / 2 - 0.02), collection,
                 bevel=hc * 0.25 * spec["roundness"] + 0.02)
    _taper(cabin, spec["cabin_top_x"], spec["cabin_top_y"], spec["cabin_top_shift"])
    cabin.data.materials.append(glass)
    parts.append(cabin)
    roof = _box("roof", (W * 0.9 * spec["cabin_top_x"] * 0.97, cl * spec["cabin_top_y"] * 0.92, 0.05),
                (0, cy + spec["cabin_top_shift"], clear + hb + hc - 0.01), collection, bevel=0.02)
    roof.data.materials.append(paint)
    parts.append(roof)
    for name, yy in (("bumper_f", L / 2), ("bumper_r", -L / 2)):
        bp = _box(name, (W * 0.96, 0.12, hb * 0.28), (0, yy, clear + hb * 0.2), collection, bevel=0.03)
        bp.data.materials.append(trim if spec["dark_bumpers"] else paint)
        parts.append(bp)
    for sx in (-1, 1):
        for sy in (-1, 1):
            bpy.ops.mesh.primitive_cylinder_add(vertices=16, radius=wheel_r, depth=0.22,
                                                location=(sx * (W / 2 - 0.08), sy * L * spec["wheelbase"] / 2, wheel_r),
                                                rotation=(0, math.pi / 2, 0))
            wh = bpy.context.object
            for c in wh.users_collection:
                c.objects.unlink(wh)
            collection.objects.link(wh)
            wh.data.materials.append(rubber)
            parts.append(wh)
    for o in parts:
        o.parent = root
    return root, parts


def instance_car(spec, collection):
    root, parts = (instance_model if spec["kind"] == "model" else instance_procedural)(spec, collection)
    root.location = Vector(spec.get("location", (0, 0, 0)))
    root.rotation_euler = Euler((0, 0, math.radians(spec.get("yaw", 0.0))))
    return root, parts


# ---------------------------------------------------------------- scene
def setup_world(s):
    world = bpy.data.worlds.new("world")
    bpy.context.scene.world = world
    world.use_nodes = True
    nt = world.node_tree
    nt.nodes.clear()
    out = nt.nodes.new("ShaderNodeOutputWorld")
    bg = nt.nodes.new("ShaderNodeBackground")
    env = nt.nodes.new("ShaderNodeTexEnvironment")
    mapping = nt.nodes.new("ShaderNodeMapping")
    coord = nt.nodes.new("ShaderNodeTexCoord")
    env.image = bpy.data.images.load(s["hdri_path"], check_existing=True)
    mapping.inputs["Rotation"].default_value = (0, 0, math.radians(s["hdri_rotation"]))
    nt.links.new(coord.outputs["Generated"], mapping.inputs["Vector"])
    nt.links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    nt.links.new(env.outputs["Color"], bg.inputs["Color"])
    nt.links.new(bg.outputs["Background"], out.inputs["Surface"])
    bg.inputs["Strength"].default_value = s["hdri_strength"]


def setup_ground(s, collection):
    g = s["ground"]
    me = bpy.data.meshes.new("ground")
    half = 150.0
    me.from_pydata([(-half, -half, 0), (half, -half, 0), (half, half, 0), (-half, half, 0)], [], [(0, 1, 2, 3)])
    o = bpy.data.objects.new("ground", me)
    collection.objects.link(o)
    m = bpy.data.materials.new("asphalt")
    m.use_nodes = True
    nt = m.node_tree
    b = nt.nodes["Principled BSDF"]
    b.inputs["Roughness"].default_value = g["roughness"]
    b.inputs["Specular"].default_value = 0.3
    noise = nt.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = g["noise_scale"]
    ramp = nt.nodes.new("ShaderNodeValToRGB")
    lo, hi = g["albedo_lo"], g["albedo_hi"]
    ramp.color_ramp.elements[0].color = (*lo, 1)
    ramp.color_ramp.elements[1].color = (*hi, 1)
    nt.links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    nt.links.new(ramp.outputs["Color"], b.inputs["Base Color"])
    o.data.materials.append(m)
    for i, mk in enumerate(g.get("markings", [])):
        stripe = _box(f"marking{i}", (mk["width"], mk["length"], 0.004), (mk["x"], mk["y"], 0.002), collection)
        stripe.rotation_euler = Euler((0, 0, math.radians(mk["angle"])))
        mm = principled("paintline", mk["rgb_linear"], 0.0, 0.6)
        stripe.data.materials.append(mm)


def setup_lights(s, collection):
    if s.get("sun"):
        sun = s["sun"]
        ld = bpy.data.lights.new("sun", "SUN")
        ld.energy = sun["strength"]
        ld.angle = math.radians(sun["angle"])
        ld.color = sun["color"]
        o = bpy.data.objects.new("sun", ld)
        el, az = math.radians(sun["elevation"]), math.radians(sun["azimuth"])
        o.rotation_euler = Euler((math.pi / 2 - el, 0, az + math.pi / 2))
        collection.objects.link(o)
    for i, lamp in enumerate(s.get("lamps", [])):
        ld = bpy.data.lights.new(f"lamp{i}", "POINT")
        ld.energy = lamp["power"]
        ld.color = lamp["color"]
        ld.shadow_soft_size = 0.3
        o = bpy.data.objects.new(f"lamp{i}", ld)
        o.location = lamp["location"]
        collection.objects.link(o)


def setup_camera(s, collection):
    c = s["camera"]
    cd = bpy.data.cameras.new("cam")
    cd.lens = c["focal_mm"]
    cd.sensor_width = 36
    cam = bpy.data.objects.new("cam", cd)
    collection.objects.link(cam)
    el, az = math.radians(c["elevation"]), math.radians(c["azimuth"])
    target = Vector(c["target"])
    d = c["distance"]
    cam.location = target + Vector((d * math.cos(el) * math.cos(az), d * math.cos(el) * math.sin(az), d * math.sin(el)))
    direction = target - cam.location
    cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    cam.rotation_euler.rotate_axis("Z", math.radians(c.get("roll", 0.0)))
    bpy.context.scene.camera = cam
    return cam


def silhouette_box(scene, cam, parts, w, h):
    dg = bpy.context.evaluated_depsgraph_get()
    xs, ys = [], []
    for o in parts:
        ev = o.evaluated_get(dg)
        me = ev.to_mesh()
        mw = ev.matrix_world
        for v in me.vertices:
            p = world_to_camera_view(scene, cam, mw @ v.co)
            if p.z > 0:
                xs.append(p.x * w)
                ys.append((1 - p.y) * h)
        ev.to_mesh_clear()
    if not xs:
        return None
    return [max(0.0, min(xs)), max(0.0, min(ys)), min(float(w), max(xs)), min(float(h), max(ys))]


def hidden_fraction(scene, cam, target_parts, occluders, n=64):
    """Share of sample rays from the camera to the target car's vertices that hit a neighbour first."""
    if not occluders:
        return 0.0
    dg = bpy.context.evaluated_depsgraph_get()
    pts = []
    for o in target_parts:
        ev = o.evaluated_get(dg)
        me = ev.to_mesh()
        pts += [ev.matrix_world @ v.co for v in me.vertices]
        ev.to_mesh_clear()
    if not pts:
        return 0.0
    step = max(1, len(pts) // n)
    occ_names = {o.name for o in occluders}
    hit = total = 0
    origin = cam.matrix_world.translation
    for p in pts[::step]:
        d = p - origin
        dist = d.length
        ok, loc, _, _, obj, _ = scene.ray_cast(dg, origin, d.normalized(), distance=dist - 0.05)
        total += 1
        if ok and obj is not None and obj.name in occ_names:
            hit += 1
    return hit / max(total, 1)


def configure_render(s):
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = s["samples"]
    scene.cycles.use_adaptive_sampling = True
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 4
    scene.cycles.diffuse_bounces = 2
    scene.cycles.glossy_bounces = 3
    scene.cycles.transmission_bounces = 2
    scene.cycles.transparent_max_bounces = 2
    scene.cycles.caustics_reflective = False
    scene.cycles.caustics_refractive = False
    scene.cycles.seed = s["seed"] % (2 ** 31)
    scene.render.threads_mode = "FIXED"
    scene.render.threads = JOB.get("threads", 1)
    scene.render.use_persistent_data = True     # the views of one scene re-use its BVH, shaders and sky
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    scene.display_settings.display_device = "None"      # linear pixels out
    scene.render.image_settings.file_format = "HDR"
    scene.render.image_settings.color_depth = "32"


def clear_scene():
    global RUBBER, TRIM
    RUBBER = TRIM = None
    for o in list(bpy.data.objects):
        keep = any(o is part for cached in _MODEL_CACHE.values() for part in (cached[0], *cached[1]))
        if not keep:
            bpy.data.objects.remove(o, do_unlink=True)
    for block in (bpy.data.meshes, bpy.data.materials, bpy.data.lights, bpy.data.cameras, bpy.data.worlds):
        for item in list(block):
            if item.users == 0:
                block.remove(item)


def set_paint(material, p):
    b = material.node_tree.nodes["Principled BSDF"]
    b.inputs["Base Color"].default_value = (*p["rgb_linear"], 1.0)
    b.inputs["Metallic"].default_value = p["metallic"]
    b.inputs["Roughness"].default_value = p["roughness"]
    b.inputs["Clearcoat"].default_value = p["clearcoat"]
    b.inputs["Clearcoat Roughness"].default_value = p["clearcoat_roughness"]


def render_scene(s):
    """Build one scene, then render each of its views (paint, camera, resolution)."""
    clear_scene()
    scene = bpy.context.scene
    coll = scene.collection
    configure_render(s)
    setup_world(s)
    setup_ground(s, coll)
    setup_lights(s, coll)
    target_root, target_parts = instance_car(s["car"], coll)
    paint = next(m for o in target_parts for m in o.data.materials if m and m.name.startswith("paint"))
    occluders = []
    for nb in s.get("neighbours", []):
        _, parts = instance_car(nb, coll)
        occluders += parts
    cam = None
    for view in s["views"]:
        try:
            set_paint(paint, view["paint"])
            scene.render.resolution_x, scene.render.resolution_y = view["resolution"]
            if cam is not None:
                bpy.data.objects.remove(cam, do_unlink=True)
            cam = setup_camera(view, coll)
            bpy.context.view_layer.update()
            w, h = view["resolution"]
            box = silhouette_box(scene, cam, target_parts, w, h)
            hidden = hidden_fraction(scene, cam, target_parts, occluders)
            scene.render.filepath = view["out_hdr"]
            bpy.ops.render.render(write_still=True)
            yield {"id": view["id"], "box": box, "hidden": round(hidden, 3)}
        except Exception as e:  # one bad view never ends the job; it is recorded
            yield {"id": view["id"], "error": f"{type(e).__name__}: {e}"}


def main():
    job_path = _load_job()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    out = open(job_path.replace(".json", ".boxes.jsonl"), "a")
    for s in JOB["scenes"]:
        written = set()
        try:
            for rec in render_scene(s):
                out.write(json.dumps(rec) + "\n")
                out.flush()
                written.add(rec["id"])
        except Exception as e:  # a scene that cannot be built: its views are recorded as failed
            for view in (v for v in s["views"] if v["id"] not in written):
                out.write(json.dumps({"id": view["id"], "error": f"{type(e).__name__}: {e}"}) + "\n")
            out.flush()
    out.close()


if __name__ == "__main__" and bpy is not None:
    main()
